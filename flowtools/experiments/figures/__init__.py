"""The figures and tables of Zhao, Bai & Zhang, one module each (``fig1`` … ``fig11``,
``table1``), and two results the paper could not compute (``lr_puzzle``: which loss
convention makes the paper's GD learning rates stable; ``cstar``: the Q1/Q2 demarcation c̃*
by bisection on the α → 0 limit). Each module follows the protocol of
``flowtools.experiments.reproduce`` (``TITLE``, ``GD``, ``FULL_TIME``, ``compute``, ``plot``,
``claims``); ``flowtools reproduce NAME`` runs one. Modules are imported on use.
"""

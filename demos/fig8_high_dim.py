"""Figure 8 of Zhao, Bai & Zhang (Appendix B): end points against c̃ for d = 3 inputs.

One panel per end-point coordinate, the outcome and the generalization error, gradient
flow to certified end points (``--gd``: the paper's GD, lr 0.5). The same as
``flowtools reproduce fig8``; see ``flowtools.experiments.figures.fig8``.

    python -m demos.fig8_high_dim [--out out/demos/] [--quick] [--gd]
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig8", argv, doc=__doc__)


if __name__ == "__main__":
    main()

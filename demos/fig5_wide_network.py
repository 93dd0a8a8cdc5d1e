"""Figure 5 of Zhao, Bai & Zhang: Theorem 1's collapse for a width-1000 network with
σ(x) = x/(1 + x²) and C_k/C_1 = 1.5 + 0.0015(k − 1) (gradient flow; ``--gd`` adds GD at
lr 0.01 × 1e5 iterations).

    python -m demos.fig5_wide_network [--out out/demos/] [--quick] [--gd]

The same as ``flowtools reproduce fig5``: writes fig5.png, fig5.nc and fig5_claims.json.
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig5", argv, doc=__doc__)


if __name__ == "__main__":
    main()

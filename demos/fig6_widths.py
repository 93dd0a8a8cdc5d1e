"""Figure 6 of Zhao, Bai & Zhang: tanh networks of widths 2, 10, 100, 1000 on n = 3 grid
points from scale 1e-20: the neurons with the largest |C_k| carry the weight, and the
learned functions (gradient flow; ``--gd`` adds GD at lr 0.01 to ℓ ≤ 1e-15).

    python -m demos.fig6_widths [--out out/demos/] [--quick] [--gd]

The same as ``flowtools reproduce fig6``: writes fig6.png, fig6.nc and fig6_claims.json.
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig6", argv, doc=__doc__)


if __name__ == "__main__":
    main()

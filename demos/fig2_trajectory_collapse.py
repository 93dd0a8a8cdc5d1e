"""Figure 2 of Zhao, Bai & Zhang: Example 1's trajectories from five seeds and scales at
c = 0.5 collapse under Theorem 1's time shift (gradient flow; ``--gd`` adds GD at lr 0.01).

    python -m demos.fig2_trajectory_collapse [--out out/demos/] [--quick] [--gd]

The same as ``flowtools reproduce fig2``: writes fig2.png, fig2.nc and fig2_claims.json.
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig2", argv, doc=__doc__)


if __name__ == "__main__":
    main()

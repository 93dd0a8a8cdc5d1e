"""Figure 3: end point in Q1 or Q2 against |C1/C2| (Example 1, n = 6, α = 1e-8, 400 seeds),
with GD lr 0.05 × 1e6 iterations, the flow at the same horizons and at t → ∞, and the α → 0
demarcation c̃*.

    python -m demos.fig3_branches [--out out/demos/] [--quick]
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig3", argv, doc=__doc__)


if __name__ == "__main__":
    main()

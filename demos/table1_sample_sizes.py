"""Table 1 of Zhao, Bai & Zhang, measured: recovery at the sample sizes n = 3, 4, 5, 6 of
Example 1 (grid data, 100 seeds at σ = 1e-8, plus exact c̃ = 0 and c̃ = 1 cases), gradient
flow to ℓ ≤ 1e-24, recovery = RMS error ≤ 1e-8 (Figure 4's criterion).

    python -m demos.table1_sample_sizes [--out out/demos/] [--quick]
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("table1", argv, doc=__doc__)


if __name__ == "__main__":
    main()

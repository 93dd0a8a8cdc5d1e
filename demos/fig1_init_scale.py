"""Figure 1 of Zhao, Bai & Zhang: generalization error against the initialization scale σ.

Panels (a)–(e): n = 2…6 evenly spaced samples on [−2, 2], 100 seeds per σ; (f): Gaussian
samples, n = 2…8, 50 trials per point. Gradient flow to the paper's stopping losses (and on
to ℓ ≤ 1e-24, where recovery is decided); ``--gd`` adds the paper's GD (lr 0.5).

    python -m demos.fig1_init_scale [--out out/demos/] [--quick] [--gd]
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig1", argv, doc=__doc__)


if __name__ == "__main__":
    main()

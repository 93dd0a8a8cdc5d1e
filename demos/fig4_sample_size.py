"""Figure 4 of Zhao, Bai & Zhang: generalization error against c̃ for n = 2…6 Gaussian samples.

Example 1, data seeds 0–4, scale 1e-20, c̃ grid with 0 and 1 exact, the gradient flow to
ℓ ≤ 1e-24 or a certified end (decided as t → ∞); recovery: RMS error ≤ 1e-8; (f) the end
points for n = 4, data seed 3. ``--gd`` adds GD at the paper's lr 0.5 (sum and mean loss).
The same as ``flowtools reproduce fig4``; see ``flowtools.experiments.figures.fig4``.

    python -m demos.fig4_sample_size [--out out/demos/] [--quick] [--gd]
"""

from flowtools.experiments.reproduce import demo_main


def main(argv=None):
    return demo_main("fig4", argv, doc=__doc__)


if __name__ == "__main__":
    main()

"""``flowtools reproduce cnn-phase --quick`` (CI-sized, ~40 s) and the edge/exponent fitters.

The command writes the PNG and a netCDF file with named dims and the settings and version
as attributes; in its data the fixed-output regime holds (at v0 ≥ 1 the output layer moves
< 5 % of the hidden layer and the benign edge does not depend on v0), small v0 grows both
layers alike (‖Δv‖/‖ΔW‖ ≈ 1), and every trained-protocol cell reached its loss target.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from flowtools.cli import main
from flowtools.experiments.figures.cnn_phase import CNNPhaseSettings, edge_mu, exponent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    import xarray as xr

    out = tmp_path_factory.mktemp("cnn")
    rc = main(["reproduce", "cnn-phase", "--quick", "--out", str(out)])
    assert rc == 0
    with xr.open_dataset(out / "cnn_phase.nc", engine="scipy") as ds:
        return out, ds.load()


def test_reproduce_writes_png_and_netcdf_with_named_dims(quick_run):
    import flowtools

    out, ds = quick_run
    assert (out / "cnn_phase.png").stat().st_size > 10_000
    assert ds["test_error"].dims == ("protocol", "seed", "v0", "mu")
    assert ds.attrs["flowtools_version"] == flowtools.__version__
    s = json.loads(ds.attrs["settings"])
    assert s["mode"] == "quick" and s == json.loads(CNNPhaseSettings.quick().as_attrs())
    fits = json.loads(ds.attrs["fits"])
    for proto in ("paper", "trained"):
        for key, stated in (("v0_small_side", -1.0), ("dn_large_v0", 0.25),
                            ("m_small_v0", -0.5)):
            assert fits[proto][key]["stated"] == stated
            assert np.isfinite(fits[proto][key]["slope"])


def test_quick_data_shows_the_two_regimes(quick_run):
    _, ds = quick_run
    s = json.loads(ds.attrs["settings"])
    tr = ds.sel(protocol="trained")
    assert float(tr["loss"].max()) <= s["loss_target"]  # every cell reached the target
    # the trained protocol's η_v0 stays below GD's stability edge 2/λ_max(θ0) at every v0
    assert float(ds["lr_over_stability_edge"].sel(protocol="trained").max()) < 0.5
    err = tr["test_error"].values
    assert np.all((0 <= err) & (err <= 0.6))
    ratio = tr["layer_change_ratio"].mean("seed")
    assert float(ratio.sel(v0=slice(1.0, None)).max()) < 0.05  # output layer ~frozen
    assert abs(float(ratio.sel(v0=s["v0s"][0]).mean()) - 1) < 0.1  # balanced growth
    # large v0: the edge is v0-independent (one cell of the ‖µ‖ grid at most)
    edge = ds["edge"].sel(protocol="trained").sel(v0=slice(1.0, None)).values
    step = np.log(s["mus"][1] / s["mus"][0])
    assert np.nanmax(np.log(edge)) - np.nanmin(np.log(edge)) <= step


def test_a_second_run_reads_every_cell_from_the_stores(quick_run):
    """The cells live in OUT/cnn_phase_store/quick (one zarr store per scan and protocol);
    running the grids again computes nothing and gives the netCDF file's numbers."""
    from flowtools.experiments.figures.cnn_phase import sweep_cells

    out, ds = quick_run
    lines = []
    cells = sweep_cells(CNNPhaseSettings.quick(), out / "cnn_phase_store" / "quick",
                        log=lines.append)
    assert len(lines) == 6 and all(" 0 cell(s) computed" in line for line in lines), lines
    np.testing.assert_array_equal(cells["main"]["test_error"], ds["test_error"].values)
    np.testing.assert_array_equal(cells["dscan"]["loss"], ds["dscan_loss"].values)
    np.testing.assert_array_equal(cells["mscan"]["layer_change_ratio"],
                                  ds["mscan_layer_change_ratio"].values)


def test_edge_and_exponent_fitters_recover_known_values():
    mus = np.geomspace(0.5, 32, 13)
    # a logistic drop in log ‖µ‖ centred at µ* per row: the edge at level 0.25 is µ*
    centres = np.array([[2.0, 4.0, 8.0], [2.2, 4.4, 8.8]])  # two seeds, slope 1 in x
    err = 0.5 / (1 + np.exp(8 * (np.log(mus) - np.log(centres[..., None]))))
    edges = edge_mu(err, mus, 0.25)
    assert np.allclose(edges, centres, rtol=0.02)
    fit = exponent(np.array([1.0, 2.0, 4.0]), edges, stated=1.0)
    assert abs(fit["slope"] - 1) < 0.03 and fit["points"] == 6
    # rows that never cross, or end above the level, have no edge
    assert np.isnan(edge_mu(np.full(5, 0.5), mus[:5], 0.25))
    assert np.isnan(edge_mu(np.full(5, 0.0), mus[:5], 0.25))


def test_reproduce_rejects_unknown_figure_and_bad_settings(capsys):
    assert main(["reproduce", "no-such-figure"]) == 2
    from flowtools.errors import FlowtoolsError

    with pytest.raises(FlowtoolsError):
        CNNPhaseSettings(level=0.7)


def test_the_law_writes_its_figure_edges_and_claims(quick_run):
    """cnn_law.png/nc and the claims table: every refined edge lies in its final bracket,
    the brackets shrank by (points + 1)^rounds from round 0's ‖µ‖ spacing, and the claims
    carry verdicts."""
    import xarray as xr

    from flowtools.experiments.cnn_law import LawSettings

    out, ds = quick_run
    s = LawSettings.quick()
    assert (out / "cnn_law.png").stat().st_size > 10_000
    with xr.open_dataset(out / "cnn_law.nc", engine="scipy") as law:
        law = law.load()
    assert law["edge"].dims == ("dn", "m", "seed", "K")
    ok = np.isfinite(law["edge"].values)
    assert ok.sum() >= len(s.rows()) * len(s.seeds) * len(s.Ks) // 2
    e, lo, hi = (law[k].values[ok] for k in ("edge", "lo", "hi"))
    assert np.all((lo <= e) & (e <= hi))
    step = np.log(s.xs[1] / s.xs[0])
    np.testing.assert_allclose(np.log(hi / lo), step / (s.points + 1) ** s.rounds, rtol=1e-9)
    claims = json.loads((out / "cnn_phase_claims.json").read_text())["claims"]
    assert len(claims) == 5
    assert {c["verdict"] for c in claims} <= {"agree", "DISAGREE", "undecided"}
    assert json.loads(ds.attrs["claims"]) == claims
    # the collapse (m identical filters are one filter at √m·v0, tests/test_cnn_law.py):
    # with random filters the m-curves are closer at equal K = m·v0²·σp√(d/n) than at
    # equal v0
    found = json.loads(law.attrs["analysis"])
    for c in found["collapse"].values():
        assert c["at_equal_K"] < c["at_equal_v0"]


def test_a_second_law_run_computes_nothing(quick_run):
    from flowtools.experiments.cnn_law import LawSettings, edges

    out, _ = quick_run
    lines = []
    edges(LawSettings.quick(), out / "cnn_phase_store" / "quick" / "law", log=lines.append)
    rounds = [line for line in lines if "cell(s):" in line]
    assert rounds and all(" 0 computed" in line for line in rounds), lines

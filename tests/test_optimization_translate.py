"""The translation of Pyomo models into HiGHS arrays, and the completion of warm starts.

The translation must hand HiGHS the same problem as Pyomo's own ``LinearStandardFormCompiler`` (same columns in
the same order, same rows, coefficients and bounds) whatever the rows look like; the completion must find the
same flows and cost as the LP of the whole model with the binaries fixed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyomo.common.errors import InfeasibleConstraintException, InvalidConstraintError
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from scipy.sparse import csr_array
from test_optimization_properties import make_problem

from geo.orlib import pmedian_distances
from optimization import completion
from optimization.heuristic import greedy_sites, warm_start_values
from optimization.model import build_model
from optimization.orlib import read_cflp, read_pmedian
from optimization.translate import compile_model, standard_form

ORLIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "orlib"


def _orlib_file(path: Path) -> Path:
    """An OR-Library file from ../shared, or a skip where the checkout has no shared/ beside it."""
    if not path.is_file():
        pytest.skip(f"OR-Library file {path.name} in ../shared is not present")
    return path


def _pmedian(name: str):
    """An OR-Library p-median instance, its shortest-path matrix from the geo layer."""
    path = _orlib_file(ORLIB / "pmedian" / f"{name}.txt")
    return read_pmedian(path, pmedian_distances(path))


def _pyomo_rows(model) -> tuple[list, dict]:
    """Pyomo's compiler output as {constraint: (lower, upper, {column id: coefficient})}, its split ranged rows
    merged, and its columns."""
    repn = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
    A = csr_array(repn.A)
    ids = [id(v) for v in repn.columns]
    rows: dict = {}
    for r, (con, kind) in enumerate(repn.rows):
        entries = {ids[A.indices[k]]: A.data[k] for k in range(A.indptr[r], A.indptr[r + 1])}
        lo, up, _ = rows.get(con, (-np.inf, np.inf, entries))
        if kind <= 0:
            lo = repn.rhs[r]
        if kind >= 0:
            up = repn.rhs[r]
        rows[con] = (lo, up, entries)
    return repn, rows


def _empty_rows_hold(theirs: dict) -> bool:
    """Whether Pyomo's rows left without entries (a row of fixed variables only: Pyomo keeps it, the
    translation drops it or refuses it by name) all hold."""
    return all(lo <= 1e-9 and up >= -1e-9 for lo, up, entries in theirs.values() if not entries)


def assert_same_as_pyomo(model) -> None:
    sf = standard_form(model)
    repn, theirs = _pyomo_rows(model)
    assert _empty_rows_hold(theirs)
    theirs = {con: row for con, row in theirs.items() if row[2]}
    assert [id(v) for v in sf.columns] == [id(v) for v in repn.columns]
    assert np.allclose(sf.cost, np.asarray(repn.c.todense()).ravel() if repn.c.shape[0] else 0.0)
    assert sf.offset == pytest.approx(float(repn.c_offset[0]) if len(repn.c_offset) else 0.0)
    ids = [id(v) for v in sf.columns]
    ours = {}
    for r, con in enumerate(sf.constraints):
        entries = {ids[sf.A.indices[k]]: sf.A.data[k] for k in range(sf.A.indptr[r], sf.A.indptr[r + 1])}
        ours[con] = (sf.row_lower[r], sf.row_upper[r], entries)
    assert list(ours) == list(theirs)
    for con, (lo, up, entries) in ours.items():
        tlo, tup, tentries = theirs[con]
        assert (lo, up) == pytest.approx((tlo, tup)), con.name
        assert entries.keys() == tentries.keys(), con.name
        assert [entries[k] for k in entries] == pytest.approx([tentries[k] for k in entries]), con.name


@pytest.mark.parametrize("linking", ["all", "pairs", "outbound", "none"])
def test_the_network_model_translates_as_pyomo_compiles_it(linking):
    pb = make_problem(3, 5, 4)
    pb = replace(pb, options=replace(pb.options, strong_linking=linking, p=2, budget=1e8,
                                     min_per_group={"A": 1}, max_per_group={"B": 2},
                                     min_share_through_centres=0.3))
    assert_same_as_pyomo(build_model(pb))


@pytest.mark.parametrize("name", ["cap41", "pmed1"])
def test_orlib_models_translate_as_pyomo_compiles_them(name):
    pb = _pmedian(name) if name.startswith("pmed") else read_cflp(_orlib_file(ORLIB / "cflp" / f"{name}.txt"))
    assert_same_as_pyomo(build_model(pb))


def _odd_model() -> pyo.ConcreteModel:
    """Rows of every kind the fast path must either read or hand to Pyomo's visitor."""
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, 3)
    m.x = pyo.Var(m.I, bounds=(0, 10))
    m.z = pyo.Var(domain=pyo.Binary)
    m.unused = pyo.Var()
    m.fixed = pyo.Var(initialize=2.0)
    m.fixed.fix()
    m.k = pyo.Param(initialize=3.0, mutable=True)
    lin = pyo.quicksum
    m.c_plain = pyo.Constraint(expr=lin([m.x[0], 2 * m.x[1]]) <= 5)
    m.c_fixed = pyo.Constraint(expr=lin([m.x[0], 4 * m.fixed]) >= 1)  # 4·2 folds into the bound
    m.c_repeat = pyo.Constraint(expr=lin([m.x[2], 3 * m.x[2], m.x[3]]) == 4)  # x2 summed: 4·x2
    m.c_zero = pyo.Constraint(expr=lin([m.x[1], 0 * m.x[3]]) <= 7)  # the zero is dropped
    m.c_param = pyo.Constraint(expr=m.k * m.x[0] + m.x[1] <= 9)  # mutable coefficient: the visitor
    m.c_range = pyo.Constraint(expr=pyo.inequality(1, m.x[0] + m.x[3] + 1, 6))  # constant in the body
    m.c_nested = pyo.Constraint(expr=2 * (m.x[0] + m.z) - (m.x[1] - m.x[2]) <= 3)
    m.c_both = pyo.Constraint(expr=m.x[0] + 1 <= m.x[1] - m.z)
    m.c_const = pyo.Constraint(expr=m.fixed * 1.0 <= 5)  # no variable, satisfied: dropped
    m.c_off = pyo.Constraint(expr=m.x[3] <= 1)
    m.c_off.deactivate()
    m.obj = pyo.Objective(expr=m.x[0] + 2 * m.x[1] - m.z + 5 + m.fixed, sense=pyo.maximize)
    return m


def test_rows_of_every_kind_translate_as_pyomo_compiles_them():
    m = _odd_model()
    assert_same_as_pyomo(m)
    sf = standard_form(m)
    assert not {id(m.unused), id(m.fixed)} & {id(v) for v in sf.columns}
    assert len(sf.constraints) == 8  # c_const dropped, c_off inactive, the range kept as one row
    assert sf.sense == pyo.maximize and sf.offset == pytest.approx(7.0)


def test_a_trivially_infeasible_or_nonlinear_row_is_refused_with_its_name():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 1))
    m.fixed = pyo.Var(initialize=2.0)
    m.fixed.fix()
    m.bad = pyo.Constraint(expr=m.fixed + 0 * m.x >= 5)
    m.obj = pyo.Objective(expr=m.x)
    with pytest.raises(InfeasibleConstraintException, match="bad"):
        standard_form(m)
    m.bad.deactivate()
    m.square = pyo.Constraint(expr=m.x * m.x <= 1)
    with pytest.raises(InvalidConstraintError, match="square"):
        standard_form(m)


def test_compiled_model_solves_to_the_same_optimum_as_pyomos_highs_interface():
    pb = make_problem(5, 4, 3)
    highs, cols = compile_model(build_model(pb))
    highs.run()
    ours = highs.getInfo().objective_function_value
    model = build_model(pb)
    pyo.SolverFactory("highs").solve(model)
    assert ours == pytest.approx(pyo.value(model.obj), rel=1e-6)


def _fixed_lp_cost(highs: highspy.Highs, idx: np.ndarray, vals: np.ndarray) -> float | None:
    """The LP of the whole model with the columns ``idx`` fixed at ``vals``: the reference completion."""
    lp = highs.getLp()
    n = lp.num_col_
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kContinuous))
    h.changeColsBounds(len(idx), idx, vals, vals)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(np.dot(np.asarray(lp.col_cost_), np.asarray(h.getSolution().col_value))) + lp.offset_


def _start(pb, model, cols, choice) -> tuple[np.ndarray, np.ndarray]:
    index = {id(v): i for i, v in enumerate(cols)}
    pairs = [(index[id(model.find_component(k))], v) for k, v in warm_start_values(pb, choice).items()
             if id(model.find_component(k)) in index]
    return np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=float)


@pytest.mark.parametrize("case", ["network-all", "network-none", "network-no-direct", "cap131", "pmed5"])
def test_completion_finds_the_fixed_lp_optimum(monkeypatch, case):
    """The completed start costs what the LP of the whole model with the binaries fixed costs, and its column
    values satisfy every row of the model."""
    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)
    if case.startswith("network"):
        pb = make_problem(7, 6, 5, direct=case != "network-no-direct")
        if case == "network-none":
            pb = replace(pb, options=replace(pb.options, strong_linking="none"))
    elif case == "cap131":
        pb = read_cflp(_orlib_file(ORLIB / "cflp" / "cap131.txt"))
    else:
        pb = _pmedian("pmed5")
    model = build_model(pb)
    highs, cols = compile_model(model)
    idx, vals = _start(pb, model, cols, greedy_sites(pb))
    [done], sense = completion.complete_starts(highs, [(idx, vals)], None)
    assert sense == 1.0
    assert done is not None
    values, cost = done
    assert cost == pytest.approx(_fixed_lp_cost(highs, idx, vals), rel=1e-7)
    lp = highs.getLp()
    A = csr_array((np.asarray(lp.a_matrix_.value_), np.asarray(lp.a_matrix_.index_),
                   np.asarray(lp.a_matrix_.start_)), shape=(lp.num_col_, lp.num_row_)).T
    activity = A @ values
    scale = np.maximum(1.0, np.abs(activity))
    assert np.all(activity >= np.asarray(lp.row_lower_) - 1e-6 * scale)
    assert np.all(activity <= np.asarray(lp.row_upper_) + 1e-6 * scale)
    assert np.all(values >= np.asarray(lp.col_lower_) - 1e-9)
    assert np.array_equal(values[idx], vals)


def test_completion_refuses_a_start_that_breaks_a_row(monkeypatch):
    """A start with more sites open than p breaks the p row, which holds only fixed columns: no completion."""
    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)
    pb = make_problem(2, 4, 3)
    pb = replace(pb, options=replace(pb.options, p=1))
    model = build_model(pb)
    highs, cols = compile_model(model)
    idx, vals = _start(pb, model, cols, {s: "small" for s in pb.sites["site_id"]})
    assert completion.complete_starts(highs, [(idx, vals)], None)[0] == [None]


def test_forced_zeros_follow_closed_sites_through_balance_rows_only():
    """Columns: y (fixed), x_in, x_out, x_free. Rows: x_in - 5y <= 0 (closed site forces x_in = 0), balance
    x_in - x_out = 0 (then forces x_out), and x_free - x_out >= -3 (mixed signs: forces nothing)."""
    A = csr_array(np.array([[-5.0, 1.0, 0.0, 0.0], [0.0, 1.0, -1.0, 0.0], [0.0, 0.0, -1.0, 1.0]]))
    lower = np.zeros(4)
    known = np.array([True, False, False, False])
    closed = completion.forced_zeros(A, lower, np.array([-np.inf, 0.0, -3.0]), np.array([0.0, 0.0, np.inf]), known,
                                     np.zeros(4))
    assert closed.tolist() == [False, True, True, False]
    opened = completion.forced_zeros(A, lower, np.array([-np.inf, 0.0, -3.0]), np.array([0.0, 0.0, np.inf]), known,
                                     np.array([1.0, 0, 0, 0]))
    assert not opened.any()
    shifted = completion.forced_zeros(A, np.array([0.0, -1.0, 0.0, 0.0]), np.array([-np.inf, 0.0, -3.0]),
                                      np.array([0.0, 0.0, np.inf]), known, np.zeros(4))
    assert not shifted.any()  # x_in may be negative: the row does not force it


def test_forced_zeros_leave_a_column_with_room_to_move():
    """1e6·y + 1e-6·x <= 1e6 + 5e-4 with y = 1 leaves x up to 500: a tolerance on the row's scale alone would
    force x to 0 and lose a feasible completion."""
    A = csr_array(np.array([[1e6, 1e-6]]))
    zero = completion.forced_zeros(A, np.zeros(2), np.array([-np.inf]), np.array([1e6 + 5e-4]),
                                   np.array([True, False]), np.array([1.0, 0.0]))
    assert not zero.any()


def _tiny_max_model(sense=pyo.maximize) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.y = pyo.Var(domain=pyo.Binary)
    m.x = pyo.Var(bounds=(0, 10))
    m.link = pyo.Constraint(expr=m.x - 5 * m.y <= 0)
    m.obj = pyo.Objective(expr=m.x - 2 * m.y + 1, sense=sense)
    return m


def test_completion_follows_the_objective_sense_and_handles_nothing_left_to_solve(monkeypatch):
    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)
    highs, cols = compile_model(_tiny_max_model())
    y = next(i for i, v in enumerate(cols) if v.name == "y")
    x = 1 - y
    [done], sense = completion.complete_starts(highs, [(np.array([y], dtype=np.int32), np.array([1.0]))], None)
    assert sense == -1.0 and done[0][x] == pytest.approx(5.0) and done[1] == pytest.approx(4.0)
    assert completion.best([3.0, None, 4.0], sense) == 2 and completion.best([3.0, None, 4.0], 1.0) == 0
    everything = (np.array([y, x], dtype=np.int32), np.array([1.0, 2.0]))
    [done], _ = completion.complete_starts(highs, [everything], None)
    assert done is not None and done[1] == pytest.approx(1.0)  # all columns known: no LP, still a start
    broken = (np.array([y, x], dtype=np.int32), np.array([0.0, 2.0]))
    assert completion.complete_starts(highs, [broken], None)[0] == [None]


def test_components_a_linear_model_cannot_hold_are_refused_by_name():
    m = _tiny_max_model()
    m.z = pyo.Var([1, 2], bounds=(0, 1))
    m.sos = pyo.SOSConstraint(var=m.z, sos=1)
    with pytest.raises(ValueError, match="sos"):
        standard_form(m)


def test_terms_that_cancel_leave_a_constant_row():
    m = _tiny_max_model()
    m.fine = pyo.Constraint(expr=m.x - m.x <= 1)
    assert m.fine not in set(standard_form(m).constraints)
    m.bad = pyo.Constraint(expr=m.x - m.x >= 1)
    with pytest.raises(InfeasibleConstraintException, match="bad"):
        standard_form(m)


def test_start_wait_must_be_seconds_or_none():
    from optimization.solve import SolverOptions, solve_model

    with pytest.raises(ValueError, match="start_wait"):
        solve_model(_tiny_max_model(), SolverOptions(start_wait="10"))


def test_an_error_while_handing_over_a_start_is_raised_not_hidden(monkeypatch):
    """An exception in HiGHS's user-solution callback would only end the solve with status error; it must
    surface as itself once the solve returns."""
    from optimization.solve import SolverOptions, solve_model

    monkeypatch.setattr(completion, "COMPLETE_START_COLUMNS", 0)

    def broken(*args, **kwargs):
        raise RuntimeError("handing over failed")

    monkeypatch.setattr(completion, "best", broken)
    pb = read_cflp(_orlib_file(ORLIB / "cflp" / "cap131.txt"))
    with pytest.raises(RuntimeError, match="handing over failed"):
        solve_model(build_model(pb), SolverOptions(warm_start=warm_start_values(pb, greedy_sites(pb))))


@st.composite
def linear_models(draw) -> pyo.ConcreteModel:
    """Random linear models: two indexed variables (some members fixed), rows of variables, monomials, numbers
    and repeated variables with every kind of bound, and an objective of either sense."""
    m = pyo.ConcreteModel()
    m.a = pyo.Var(range(draw(st.integers(1, 4))), bounds=(0, 5))
    m.b = pyo.Var(range(draw(st.integers(1, 4))), domain=pyo.Binary)
    members = [*m.a.values(), *m.b.values()]
    for v in members:
        if draw(st.booleans()) and draw(st.booleans()):
            v.fix(draw(st.integers(0, 1)))
    coef = st.sampled_from([0.0, 1.0, -1.0, 2.5, -3.0, 7.0])

    def term():
        v = draw(st.sampled_from(members))
        kind = draw(st.sampled_from(["var", "mono", "number"]))
        return v if kind == "var" else (MonomialTermExpression((draw(coef), v)) if kind == "mono" else
                                        draw(st.sampled_from([1.0, -2.0])))

    m.rows = pyo.ConstraintList()
    for _ in range(draw(st.integers(1, 6))):
        body = LinearExpression([term() for _ in range(draw(st.integers(1, 5)))])
        lo, up = draw(st.sampled_from([(None, 4.0), (-4.0, None), (1.0, 1.0), (-3.0, 6.0)]))
        m.rows.add((lo, body, up) if lo != up else (body, lo))
    m.obj = pyo.Objective(expr=LinearExpression([term() for _ in range(draw(st.integers(1, 4)))]),
                          sense=draw(st.sampled_from([pyo.minimize, pyo.maximize])))
    return m


@settings(max_examples=60, deadline=None)
@given(linear_models())
def test_random_linear_models_translate_as_pyomo_compiles_them(m):
    """The same problem as Pyomo's compiler: where Pyomo keeps a row of fixed variables that cannot hold (or
    refuses the model), the translation refuses it by name."""
    try:
        _, theirs = _pyomo_rows(m)
    except InfeasibleConstraintException:
        theirs = None
    if theirs is None or not _empty_rows_hold(theirs):
        with pytest.raises(InfeasibleConstraintException):
            standard_form(m)
        return
    assert_same_as_pyomo(m)

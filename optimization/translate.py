"""Translation of a linear Pyomo model into the arrays HiGHS takes (``highspy.Highs.passModel``).

:func:`standard_form` reads every active constraint and the objective of a Pyomo model into one sparse matrix,
the way Pyomo's ``LinearStandardFormCompiler`` does, with two differences:

- **a fast path for rows that are already linear**: a body that is a ``LinearExpression`` of variables and
  ``MonomialTermExpression`` terms with numeric coefficients (how :mod:`optimization.model` builds every row) is
  read term by term from its arguments, without walking it with Pyomo's ``LinearRepnVisitor``. Any other body
  (products, sums of sums, parameters, named expressions) goes through that visitor, exactly as in Pyomo. On
  the p-median graph pmed15 (91,504 rows, 453,000 terms) this takes 0.2 s against 0.6 s for Pyomo's compiler,
  measured in ``docs/benchmarks.md``;
- **ranged rows stay one row** with a lower and an upper bound (HiGHS takes ranges; Pyomo's mixed form splits
  them in two).

What is kept from Pyomo's compiler, so that HiGHS sees the same problem: constraints in
``ordered_active_constraints`` order; columns in the order Pyomo's ``VarRecorder`` gives them (all members of a
variable component at its first appearance, objective first); fixed variables folded into the constants;
repeated variables of a row summed and zero coefficients dropped; variables in no row nor the objective left
out; a row without variables checked against its bounds (``InfeasibleConstraintException`` if it fails) and
dropped. Tests compare the result with Pyomo's compiler on models of every kind of row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException, InvalidConstraintError, InvalidExpressionError
from pyomo.common.numeric_types import native_numeric_types
from pyomo.core.base import Block, Constraint, Expression, ExternalFunction, Param, RangeSet, Set, Suffix, Var
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.network import Port
from pyomo.repn.linear import LinearRepnVisitor
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import (
    FileDeterminism_to_SortComponents,
    VarRecorder,
    categorize_valid_components,
    ordered_active_constraints,
)
from scipy.sparse import csr_array

_NUMBERS = frozenset(native_numeric_types)


@dataclass
class StandardForm:
    """A linear model as arrays: ``row_lower ≤ A x ≤ row_upper`` (±inf where a side is open), objective
    ``cost · x + offset`` in ``sense`` (``pyo.minimize`` or ``pyo.maximize``); ``columns`` the Pyomo variables
    in column order, ``constraints`` the Pyomo constraint of each row."""

    columns: list
    cost: np.ndarray
    offset: float
    sense: int
    A: csr_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    constraints: list


class _Reader:
    """Rows of a model, term by term: column numbers and coefficients, with the constant moved out."""

    def __init__(self, model: pyo.ConcreteModel):
        config = LinearStandardFormCompiler.CONFIG()
        self.config = config
        self.var_map: dict[int, object] = {}
        self.col_of: dict[int, int] = {}
        self.sorter = FileDeterminism_to_SortComponents(config.file_determinism)
        self.recorder = VarRecorder(self.var_map, self.sorter)
        self.visitor = LinearRepnVisitor({}, var_recorder=self.recorder)
        self.is_var: dict[type, bool] = {}

    def _sync(self) -> None:
        if len(self.col_of) < len(self.var_map):
            col_of = self.col_of
            for key in islice(self.var_map, len(col_of), None):
                col_of[key] = len(col_of)

    def _column(self, var) -> int | None:
        """Column of an unfixed variable met for the first time (None for a fixed one)."""
        if var.fixed:
            return None
        self.recorder.add(var)
        self._sync()
        return self.col_of[id(var)]

    def read(self, body, owner) -> tuple[list[int], list[float], float]:
        """(columns, coefficients, constant) of a linear expression; raises ``InvalidConstraintError`` naming
        ``owner`` (the constraint or objective) when it is not linear."""
        if body.__class__ is LinearExpression:
            args = body.args
            try:
                cols = [self.col_of[id(a._args_[1] if a.__class__ is MonomialTermExpression else a)] for a in args]
            except KeyError:
                cols = None
            if cols is not None:
                coefs = [a._args_[0] if a.__class__ is MonomialTermExpression else 1.0 for a in args]
                if _NUMBERS.issuperset(map(type, coefs)):
                    return cols, coefs, 0.0
            read = self._read_linear(args)
            if read is not None:
                return read
        if body.__class__ in native_numeric_types:
            return [], [], float(body)
        repn = self.visitor.walk_expression(body)
        if repn.nonlinear is not None:
            error = InvalidExpressionError if owner.ctype is pyo.Objective else InvalidConstraintError
            raise error(f"{owner.name!r} contains nonlinear terms: a linear model is expected")
        self._sync()
        col_of = self.col_of
        return [col_of[k] for k in repn.linear], [float(v) for v in repn.linear.values()], float(pyo.value(
            repn.constant))

    def _read_linear(self, args) -> tuple[list[int], list[float], float] | None:
        """:meth:`read` of a ``LinearExpression`` with variables not met before, fixed variables or numbers among
        its terms; None when a term is not a variable, a numeric monomial or a number."""
        cols: list[int] = []
        coefs: list[float] = []
        constant = 0.0
        col_of, is_var = self.col_of, self.is_var
        for arg in args:
            cls = arg.__class__
            if cls is MonomialTermExpression:
                coef, var = arg.args
                if coef.__class__ not in native_numeric_types:
                    return None
            elif cls in native_numeric_types:
                constant += arg
                continue
            else:
                coef, var = 1.0, arg
            col = col_of.get(id(var))
            if col is None:
                kind = is_var.get(var.__class__)
                if kind is None:
                    kind = is_var[var.__class__] = bool(getattr(var, "is_variable_type", lambda: False)())
                if not kind:
                    return None
                col = self._column(var)
                if col is None:
                    if var.value is None:
                        return None  # the visitor names the variable without a value
                    constant += coef * var.value
                    continue
            cols.append(col)
            coefs.append(coef)
        return cols, coefs, constant


_VALID = {Block, Constraint, Var, Param, Expression, ExternalFunction, Set, RangeSet, Port}


def standard_form(model: pyo.ConcreteModel) -> StandardForm:
    """The arrays of a linear Pyomo model with at most one active objective (see the module docstring). Active
    components the translation cannot represent (SOS constraints, disjunctions, logical constraints) are refused
    by name, as Pyomo's compiler refuses them, rather than dropped."""
    reader = _Reader(model)
    sorter = reader.sorter
    _, unknown = categorize_valid_components(model, active=True, sort=sorter, valid=_VALID,
                                             targets={Suffix, pyo.Objective})
    if unknown:
        names = "; ".join(f"{k.__name__}: {', '.join(c.name for c in v)}" for k, v in unknown.items())
        raise ValueError(f"model {model.name!r} has active components a linear model cannot hold ({names})")
    objectives = list(model.component_data_objects(pyo.Objective, active=True, sort=sorter))
    if len(objectives) > 1:
        raise ValueError(f"model {model.name!r}: one objective expected, found {len(objectives)}")
    obj_cols: list[int] = []
    obj_coefs: list[float] = []
    offset, sense = 0.0, pyo.minimize
    if objectives:
        obj = objectives[0]
        obj_cols, obj_coefs, offset = reader.read(obj.expr, obj)
        sense = obj.sense
    indptr, indices, data = [0], [], []
    lower, upper, constraints = [], [], []
    for con in ordered_active_constraints(model, reader.config):
        lb, body, ub = con.to_bounded_expression(True)
        cols, coefs, constant = reader.read(body, con)
        if lb is None and ub is None:
            continue
        if not cols:
            _check_constant(con, lb, ub, constant)
            continue
        indices += cols
        data += coefs
        indptr.append(len(indices))
        lower.append(-math.inf if lb is None else lb - constant)
        upper.append(math.inf if ub is None else ub - constant)
        constraints.append(con)
    n = len(reader.var_map)
    A = csr_array((np.asarray(data, dtype=float), np.asarray(indices, dtype=np.int64),
                   np.asarray(indptr, dtype=np.int64)), shape=(len(lower), n))
    A.sum_duplicates()
    A.eliminate_zeros()
    row_lower, row_upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    emptied = np.flatnonzero(np.diff(A.indptr) == 0)
    if len(emptied):
        for r in emptied:
            _check_constant(constraints[r], None if math.isinf(row_lower[r]) else row_lower[r],
                            None if math.isinf(row_upper[r]) else row_upper[r], 0.0)
        kept = np.setdiff1d(np.arange(A.shape[0]), emptied)
        A, row_lower, row_upper = csr_array(A[kept]), row_lower[kept], row_upper[kept]
        constraints = [constraints[r] for r in kept]
    cost = np.zeros(n)
    np.add.at(cost, np.asarray(obj_cols, dtype=np.int64), np.asarray(obj_coefs, dtype=float))
    used = (np.bincount(A.indices, minlength=n) > 0) | (cost != 0)
    columns = list(reader.var_map.values())
    if not used.all():
        columns = [v for v, keep in zip(columns, used, strict=True) if keep]
        A, cost = A[:, used], cost[used]
    return StandardForm(columns, cost, float(offset), sense, csr_array(A), row_lower, row_upper, constraints)


def _check_constant(con, lb: float | None, ub: float | None, constant: float) -> None:
    """A row without variables (after fixed ones are folded and cancelling terms summed): nothing if
    ``lb ≤ constant ≤ ub``, else ``InfeasibleConstraintException`` naming the constraint."""
    if (lb is None or lb <= constant) and (ub is None or ub >= constant):
        return
    raise InfeasibleConstraintException(f"model contains a trivially infeasible constraint, '{con.name}'")


def compile_model(model: pyo.ConcreteModel):
    """Translate a linear Pyomo model into a loaded ``highspy.Highs`` (through :func:`standard_form`); returns
    (highs, columns) with ``columns`` the Pyomo variables in column order. Fixed variables are folded into the
    constants; variables in no row nor the objective are left out."""
    sf = standard_form(model)
    cols = sf.columns
    n = len(cols)
    inf = highspy.kHighsInf
    bounds, integer = _column_bounds(cols)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, sf.A.shape[0]
    lp.col_cost_ = sf.cost.astype(float)
    lp.col_lower_ = np.array([-inf if b[0] is None else b[0] for b in bounds], dtype=float)
    lp.col_upper_ = np.array([inf if b[1] is None else b[1] for b in bounds], dtype=float)
    lp.row_lower_ = np.where(np.isfinite(sf.row_lower), sf.row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(sf.row_upper), sf.row_upper, inf)
    A = sf.A.tocsc()
    A.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    if any(integer):
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                           for i in integer]
    lp.offset_ = sf.offset
    if sf.sense == pyo.maximize:
        lp.sense_ = highspy.ObjSense.kMaximize
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs, cols


def _column_bounds(cols) -> tuple[list[tuple], list[bool]]:
    """(lower, upper) bounds (None = unbounded) and integrality of each column. Variables without bounds of
    their own share their domain's answer, looked up once per domain: ``VarData.bounds`` costs about 2 µs a
    variable, 0.6 s on a 250,000-column p-median model. Reads the private ``_lb``/``_ub`` slots of
    ``VarData`` (stable since Pyomo 6.0) and falls back to the public properties without them."""
    cache: dict[int, tuple] = {}
    bounds, integer = [], []
    for v in cols:
        if getattr(v, "_lb", 0) is None and getattr(v, "_ub", 0) is None:
            key = id(v.domain)
            hit = cache.get(key)
            if hit is None:
                hit = cache[key] = (v.bounds, not v.is_continuous())
        else:
            hit = (v.bounds, not v.is_continuous())
        bounds.append(hit[0])
        integer.append(hit[1])
    return bounds, integer

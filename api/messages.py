"""Error messages in Russian beside English (docs/api.md, "Errors in two languages / Ошибки на двух языках").

Every error body the API sends carries both languages, whatever the request's ``Accept-Language``:

- a plain error: ``{"detail": "<English>", "detail_ru": "<Russian>"}`` (``detail`` as before, for compatibility);
- a 422: ``{"detail": [{"loc": [...], "msg": "<English>", "msg_ru": "<Russian>", "type": "..."}]}``.

Messages the API writes itself are given in both languages where they are raised (:class:`ApiError`,
:func:`item`). Messages that come from below — pydantic's validation errors, the scenario schema's and the
dataset's checks (``planner.scenario``), the framework's own 404/405 — are put into Russian here: pydantic's by
their ``type`` and context, the domain's by the patterns in :data:`DOMAIN_RU`. A message neither covers keeps its
English text after a Russian lead-in (:func:`ru_item`), so ``msg_ru`` is never missing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException

NO_KEY = "missing or unknown API key: send it in the X-API-Key header"
NO_KEY_RU = "ключ API не передан или неизвестен: передайте его в заголовке X-API-Key"
"""The 401 every authenticated route (and the body guard, before it parses a YAML body) answers without an active
key, English and Russian."""


class ApiError(HTTPException):
    """An HTTP error with its message in English (``detail``) and Russian (``detail_ru``)."""

    def __init__(self, status_code: int, detail: str, detail_ru: str, headers: dict[str, str] | None = None):
        super().__init__(status_code, detail, headers)
        self.detail_ru = detail_ru


def item(loc: list | tuple, msg: str, msg_ru: str, kind: str = "value_error") -> dict:
    """One located 422 error in both languages."""
    return {"loc": list(loc), "msg": msg, "msg_ru": msg_ru, "type": kind}


FRAMEWORK_RU = {
    "Not Found": "Не найдено: по этому адресу ничего нет",
    "Method Not Allowed": "Метод не поддерживается по этому адресу (допустимые — в заголовке «Allow»)",
    "Unsupported Media Type": "Неподдерживаемый тип содержимого",
    "Internal Server Error": "Внутренняя ошибка сервера",
}
"""Russian of the details Starlette and FastAPI write themselves."""


STATUS_RU = {"queued": "в очереди", "running": "выполняется", "succeeded": "завершён успешно",
             "failed": "завершён с ошибкой", "cancelled": "отменён"}
"""Russian of a run's or estimate job's status, for messages."""


def status_ru(status: str) -> str:
    """A run's status in Russian, the code beside it (``в очереди, queued``)."""
    return f"{STATUS_RU.get(status, status)}, «{status}»"


def ru_detail(detail: str, status_code: int) -> str:
    """The Russian of a plain error's ``detail`` that was not raised as an :class:`ApiError`."""
    if detail in FRAMEWORK_RU:
        return FRAMEWORK_RU[detail]
    return f"Ошибка {status_code} (подробности по-английски): {detail}"


def _ctx(ctx: dict | None, key: str) -> Any:
    return (ctx or {}).get(key, "?")


PYDANTIC_RU = {
    "missing": lambda c: "обязательное поле не задано",
    "extra_forbidden": lambda c: "неизвестное поле",
    "greater_than": lambda c: f"должно быть больше {_ctx(c, 'gt')}",
    "greater_than_equal": lambda c: f"должно быть не меньше {_ctx(c, 'ge')}",
    "less_than": lambda c: f"должно быть меньше {_ctx(c, 'lt')}",
    "less_than_equal": lambda c: f"должно быть не больше {_ctx(c, 'le')}",
    "string_too_long": lambda c: f"текст длиннее {_ctx(c, 'max_length')} знаков",
    "string_too_short": lambda c: f"текст короче {_ctx(c, 'min_length')} знаков",
    "too_long": lambda c: f"больше {_ctx(c, 'max_length')} элементов",
    "too_short": lambda c: f"меньше {_ctx(c, 'min_length')} элементов",
    "literal_error": lambda c: f"допустимые значения: {_or(_ctx(c, 'expected'))}",
    "enum": lambda c: f"допустимые значения: {_or(_ctx(c, 'expected'))}",
    "int_parsing": lambda c: "ожидается целое число",
    "int_type": lambda c: "ожидается целое число",
    "int_from_float": lambda c: "ожидается целое число, без дробной части",
    "float_parsing": lambda c: "ожидается число",
    "float_type": lambda c: "ожидается число",
    "finite_number": lambda c: "ожидается конечное число (NaN и бесконечность не допускаются)",
    "bool_parsing": lambda c: "ожидается логическое значение (true или false)",
    "bool_type": lambda c: "ожидается логическое значение (true или false)",
    "string_type": lambda c: "ожидается текст",
    "string_unicode": lambda c: "текст не в Юникоде",
    "list_type": lambda c: "ожидается список",
    "dict_type": lambda c: "ожидается словарь (объект)",
    "model_type": lambda c: "ожидается объект с полями",
    "model_attributes_type": lambda c: "ожидается объект с полями",
    "json_invalid": lambda c: "тело запроса — не JSON",
    "json_type": lambda c: "ожидается JSON",
    "none_required": lambda c: "ожидается null",
    "unicode": lambda c: "текст не в Юникоде (одиночный суррогатный код)",
    "duplicate_key": lambda c: "ключ повторён",
    "duplicate_item": lambda c: f"значение {_ctx(c, 'item')} указано более одного раза",
    "one_of": lambda c: str(_ctx(c, "ru")),
}
"""Russian of pydantic's (and the body guard's) error kinds, by ``type``, from their context (bounds, choices)."""

DOMAIN_RU: list[tuple[re.Pattern, str]] = [(re.compile(p, re.S), t) for p, t in [
    (r"^unknown country (?P<x>\S+); known: (?P<known>.*)$", "неизвестная страна {x}; известные: {known}"),
    (r"^unknown region or federal district (?P<x>.+)$", "неизвестный регион или федеральный округ {x}"),
    (r"^unknown region (?P<x>.+?)\.(?P<hint>.*)$", "неизвестный регион {x}.{hint}"),
    (r"^unknown border crossing (?P<x>.+?)\.(?P<hint>.*)$", "неизвестный пункт пропуска {x}.{hint}"),
    (r"^unknown outside market (?P<x>.+?)\.(?P<hint>.*)$", "неизвестный внешний рынок {x}.{hint}"),
    (r"^unknown federal district (?P<x>\S+); valid: (?P<known>.*)$",
     "неизвестный федеральный округ {x}; допустимые: {known}"),
    (r"^unknown commodity group (?P<x>.+?)\.(?P<hint>.*)$", "неизвестная товарная группа {x}.{hint}"),
    (r"^unknown parameter (?P<x>.+?)\.(?P<hint>.*)$", "неизвестный параметр {x}.{hint}"),
    (r"^unknown table (?P<x>\S+); tables: (?P<known>.*)$", "неизвестная таблица {x}; таблицы: {known}"),
    (r"^unknown key; valid keys: (?P<known>.*)$", "неизвестный ключ; допустимые: {known}"),
    (r"^at most (?P<n>\d+) items, got (?P<m>\d+)$", "не больше {n} элементов, получено {m}"),
    (r"^the scope is empty.*$", "охват пуст: перечислите страны (countries), федеральные округа "
                                "(federal_districts) или регионы (regions)"),
    (r"^selects no region.*$", "охват не содержит ни одного региона"),
    (r"^(?P<p>\d+) centres cannot open in a scope of (?P<n>\d+) regions: at most (?P<room>\d+) \((?P<e>\d+) "
     r"existing \+ candidates\.max_per_region (?P<m>\d+) per region\)$",
     "{p} центров не разместить в охвате из {n} регионов: не больше {room} ({e} существующих + "
     "candidates.max_per_region {m} на регион)"),
    (r"^centres in (?P<k>\d+) different regions cannot open in a scope of (?P<n>\d+) regions$",
     "центры в {k} разных регионах не разместить в охвате из {n} регионов"),
    (r"^(?P<k>\d+) different regions need at least as many centres, but objective\.p is (?P<p>\d+)$",
     "для {k} разных регионов нужно не меньше {k} центров, а objective.p = {p}"),
    (r"^(?P<name>[a-z0-9_]+): (?P<v>\S+) (?P<unit>.*?) ?is above the maximum (?P<lim>\S+)$",
     "{name}: {v} {unit} — больше максимума {lim}"),
    (r"^(?P<name>[a-z0-9_]+): (?P<v>\S+) (?P<unit>.*?) ?is below the minimum (?P<lim>\S+)$",
     "{name}: {v} {unit} — меньше минимума {lim}"),
    (r"^give the outside market's id \(market\) or a network town \(town\)$",
     "укажите id внешнего рынка (market) или город сети (town)"),
    (r"^(?P<c>[a-z_]+): unknown stage (?P<x>.+?)\.(?P<hint>.*)$", "{c}: неизвестный этап {x}.{hint}"),
    (r"^(?P<cs>[a-z_]+\.[a-z_]+): loss share must be within 0-100 %, got (?P<v>\S+)$",
     "{cs}: доля потерь должна быть от 0 до 100 %, получено {v}"),
    (r"^shares are fractions within 0-1 \(0\.2 = 20%\), got (?P<v>.+)$",
     "доли задаются дробями от 0 до 1 (0.2 = 20 %), получено {v}"),
    (r"^coverage_min_agri_lq selects the regions of the coverage rule: set coverage_hours too$",
     "coverage_min_agri_lq выбирает регионы для правила охвата: задайте и coverage_hours"),
    (r"^network\.(?P<k>\w+) was removed: .*$",
     "поле network.{k} удалено: охват всех каналов теперь один, его задаёт network.k_nearest; удалите ключ"),
    (r"^(?P<n>\d+) is more centres than the scope can hold \((?P<room>\d+)\)$",
     "{n} — больше центров, чем вмещает охват ({room})"),
    (r"^expected a finite number, got (?P<x>.+)$", "ожидается конечное число, получено {x}"),
    (r"^(text|key) is not valid Unicode.*$", "текст не в Юникоде (одиночный суррогатный код)"),
    (r"^give exactly one of (?P<x>.+)$", "укажите ровно одно из: {x}"),
    (r"^unknown candidate id (?P<x>.+)$", "неизвестный id площадки-кандидата {x}"),
]]
"""Russian of the scenario checks' messages (``planner.scenario``, the dataset checks), by pattern; a pattern's
named groups are ids, numbers and lists, carried over as they are. A " Did you mean …?" hint becomes
« Возможно, имелось в виду …?»."""


def _or(text: Any) -> str:
    """A list of quoted choices joined in Russian (``'a', 'b' or 'c'`` → ``'a', 'b' или 'c'``)."""
    return str(text).replace("' or '", "' или '")


def _hint(text: str) -> str:
    return _or(text.replace(" Did you mean ", " Возможно, имелось в виду "))


def ru_item(msg: str, kind: str = "value_error", ctx: dict | None = None) -> str:
    """The Russian of a located error (a 422 item) that was not written in both languages: by pydantic's error
    ``kind`` and its context, else by the domain patterns, else the English text after a Russian lead-in."""
    if kind in PYDANTIC_RU and kind != "value_error":
        return PYDANTIC_RU[kind](ctx)
    for pattern, template in DOMAIN_RU:
        m = pattern.match(msg)
        if m:
            return _hint(template.format(**m.groupdict()))
    return f"Недопустимое значение (подробности по-английски): {msg}"


RUN_ERROR_RU: list[tuple[re.Pattern, str]] = [(re.compile(p, re.S), t) for p, t in [
    (r"^the run needed more memory than the worker limit of (?P<mb>\d+) MiB",
     "расчёту не хватило памяти: предел рабочего процесса {mb} МиБ (PLANNER_WORKER_MEMORY_MB); уменьшите сценарий "
     "(охват, товарные группы, network.k_nearest) или попросите оператора поднять предел"),
    (r"^interrupted: its worker is gone \(the server was stopped, crashed or restarted while the run was running; "
     r"(?P<why>.*)\); submit it again$",
     "прерван: рабочий процесс исчез (сервер был остановлен, упал или перезапущен во время расчёта; {why}); "
     "отправьте расчёт снова"),
    (r"^interrupted: the server was shut down while the run was running; submit it again$",
     "прерван: сервер был остановлен во время расчёта; отправьте расчёт снова"),
    (r"^deadline of (?P<s>[\d.e+]+) s passed at stage '(?P<stage>.*)'",
     "срок {s} с истёк на этапе «{stage}» (solver.time_limit_s плюс PLANNER_RUN_ALLOWANCE_S); рабочий процесс "
     "остановлен"),
    (r"^worker ended by signal (?P<name>\w+)(?P<mem> — the run needed more memory)?",
     "рабочий процесс завершён сигналом {name}"),
    (r"^worker exited with code (?P<code>-?\w+)$", "рабочий процесс завершился с кодом {code}"),
    (r"^not started: stored by an older version, its scenario is no longer valid: (?P<why>.*)$",
     "не запущен: сохранён прежней версией, его сценарий больше не проходит проверку: {why}"),
]]
"""Russian of the messages the job layer writes into a failed run's ``error`` (``api/jobs.py``,
``api/repair.py``), by pattern."""


def ru_run_error(error: str | None) -> str | None:
    """The Russian of a failed run's or estimate job's ``error``: the job layer's own messages by
    :data:`RUN_ERROR_RU`, the scenario checks' by :data:`DOMAIN_RU`, else the English text after a Russian lead-in
    (a solver's or a library's message)."""
    if not error:
        return error
    for pattern, template in RUN_ERROR_RU:
        m = pattern.match(error)
        if m:
            text = template.format(**{k: v or "" for k, v in m.groupdict().items()})
            return text + ("; расчёту не хватило памяти (PLANNER_WORKER_MEMORY_MB)" if m.groupdict().get("mem")
                           else "")
    for pattern, template in DOMAIN_RU:
        m = pattern.match(error)
        if m:
            return _hint(template.format(**m.groupdict()))
    return f"Расчёт завершился с ошибкой (подробности по-английски): {error}"


def bilingual_items(items: list[dict]) -> list[dict]:
    """422 items with ``msg_ru`` added where it is missing (pydantic's ``ctx`` is used, then dropped)."""
    out = []
    for it in items:
        it = dict(it)
        ctx = it.pop("ctx", None)
        if not it.get("msg_ru"):
            it["msg_ru"] = ru_item(str(it.get("msg", "")), str(it.get("type", "value_error")), ctx)
        out.append(it)
    return out

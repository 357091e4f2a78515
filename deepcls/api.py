"""The Python API's one validation layer: ``checked(function)`` makes a public function refuse a call
whose arguments do not fit its signature or its type hints, with one ConfigError line
(``dc.NAME: argument ARG must be TYPE, got VALUE-TYPE VALUE``) instead of a TypeError or
AttributeError from deep inside.

Only types are checked here, from the hints the functions already carry; values (an unknown table,
a negative batch size, a path that cannot be read) are checked where they are understood. The
check is deliberately small: it knows the hints deepcls writes (classes, ``X | None``, ``Literal``,
``tuple[...]`` and the ``collections.abc`` containers), and accepts whatever it cannot read (a hint
that does not resolve, a ``Protocol``), so a hint it does not understand never refuses a good call.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any, TypeVar

from deepcls.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
SHOWN = 60  # characters of a refused value's repr in an error line


def checked(function: F, name: str | None = None, *, types: bool = True) -> F:
    """``function`` refusing, with one ConfigError line, a call that does not bind to its signature or
    (unless ``types`` is false: a constructor that converts and checks its arguments itself, with
    its own messages) an argument that does not fit its type hint. ``name`` (default
    ``dc.<qualified name>``, a constructor shown as its class) is how the error names it."""
    label = name or "dc." + function.__qualname__.removesuffix(".__init__")

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if problem := call_problem(function, args, kwargs, types=types):
            raise ConfigError(f"{label}: {problem}")
        return function(*args, **kwargs)

    return typing.cast(F, wrapper)


def call_problem(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any], types: bool = True) -> str | None:
    """Why ``function(*args, **kwargs)`` is refused (a call that does not bind, or with ``types`` the
    first argument that does not fit its hint), or None. Defaults are not checked: they are the
    function's own."""
    signature, hints = _parameters(function)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as err:
        return str(err)
    if not types:
        return None
    for parameter_name, value in bound.arguments.items():
        kind = signature.parameters[parameter_name].kind
        hint = hints.get(parameter_name, Any)
        if kind is inspect.Parameter.VAR_POSITIONAL:
            items = list(enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            items = list(value.items())
        else:
            items = [(parameter_name, value)]
        for label, item in items:
            if not conforms(item, hint):
                return argument_problem(str(label), item, hint)
    return None


def check(name: str, argument: str, value: Any, hint: Any) -> None:
    """ConfigError ``name: argument ARGUMENT must be HINT, got ...`` unless ``value`` fits ``hint``: for
    the classes whose constructors convert some arguments themselves (deepcls.study)."""
    if not conforms(value, hint):
        raise ConfigError(f"{name}: {argument_problem(argument, value, hint)}")


def argument_problem(argument: str, value: Any, hint: Any) -> str:
    return f"argument {argument} must be {describe(hint)}, got {type(value).__name__} {shown(value)}"


def shown(value: Any) -> str:
    """``repr(value)`` on one line, cut to :data:`SHOWN` characters (a DataFrame's repr spans lines)."""
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a repr that fails must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


@functools.cache
def _parameters(function: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    """The signature and the resolved hints of ``function``'s parameters. When the hints do not all
    resolve (a name imported only for type checkers), each is resolved on its own and one that
    still does not is left out: accepted, never a crash."""
    signature = inspect.signature(function)
    target = inspect.unwrap(function)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
        namespace = getattr(target, "__globals__", {})
        for parameter_name, annotation in getattr(target, "__annotations__", {}).items():
            try:  # what typing.get_type_hints does, one annotation at a time
                hints[parameter_name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            except Exception:
                continue
    hints.pop("return", None)
    return signature, hints


# ---------------------------------------------------------------------- conformance
def conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint``, strictly where it matters to deepcls: a bool is not a number,
    a str is not a sequence of str (``"ab"`` as a list of tables means ``["a", "b"]``), and the
    elements of a sized container are checked (an iterator is never consumed)."""
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, (str, typing.ForwardRef, TypeVar)):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(conforms(value, arm) for arm in args)
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if origin is None:
        return _instance(value, hint)
    if not _instance(value, origin):
        return False
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(conforms(item, args[0]) for item in value)
        return not args or (len(value) == len(args) and all(conforms(v, a) for v, a in zip(value, args)))
    if isinstance(value, (str, bytes)) and origin is not str:  # a str is one name, never a sequence of names
        return False
    if not args or not isinstance(value, Sized) or isinstance(value, Iterator) or origin is type:
        return True
    if issubclass(origin, Mapping) and len(args) == 2:
        return all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
    if issubclass(origin, Iterable) and len(args) == 1:
        return all(conforms(item, args[0]) for item in value)
    return True


def _instance(value: Any, cls: Any) -> bool:
    """``isinstance``, with numbers read as people mean them: a bool is no int or float, any integer
    (numpy's too) is an int, and an integer is a float. A class isinstance cannot test (a Protocol
    that is not runtime-checkable) accepts."""
    if cls is bool:
        return isinstance(value, bool)
    if cls is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if cls is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if cls is Callable:
        return callable(value)
    try:
        return isinstance(value, cls)
    except TypeError:
        return True


def describe(hint: Any) -> str:
    """A hint as people read it: ``str | None``, ``Sequence[int]``, ``RunStore``."""
    if hint is None or hint is type(None):
        return "None"
    if hint is Any:
        return "any value"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(describe(arm) for arm in args)
    if origin is typing.Literal:
        return " | ".join(repr(option) for option in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else describe(a) for a in args)
        return f"{describe(origin)}[{inner}]" if args else describe(origin)
    if isinstance(hint, typing.ForwardRef):
        return hint.__forward_arg__
    if isinstance(hint, type):
        return "os.PathLike" if hint.__name__ == "PathLike" else hint.__name__
    return str(hint)


def as_bool(name: str, value: object) -> bool:
    """A notebook parameter that is a yes/no: a bool, or the words ``true`` / ``false`` (any case),
    as papermill's ``-p train False`` or an environment variable give them; never truthiness
    (``"no"`` is not true). ConfigError in one line otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{name} must be True or False (or the words true / false), got {value!r}")


def as_seeds(value: object) -> tuple[int, ...]:
    """Seeds as a notebook parameter or ``--seeds`` gives them: a list of whole numbers, one number,
    or a string such as ``"0,1,2"`` or ``"[0, 1, 2]"`` (papermill's ``-p seeds 0,1,2``). ConfigError in
    one line for anything else, a negative or a repeated seed."""
    return whole_numbers("seeds", value)


def whole_numbers(what: str, value: object) -> tuple[int, ...]:
    """Distinct whole numbers >= 0 (seeds, rows, run counts) from a list, one number or a
    comma-separated string, as notebooks and the command line give them; a repeated one would count
    one run twice. ConfigError in one line naming ``what`` otherwise."""
    items: list[object]
    if isinstance(value, str):
        items = [part.strip() for part in value.strip().strip("[]()").split(",") if part.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        items = [value]
    numbers = []
    for item in items:
        text = item.strip() if isinstance(item, str) else None
        if text and text.startswith("-") and text[1:].isdigit():
            raise ConfigError(f"{what} must be >= 0, got {value!r}")
        if isinstance(item, bool) or not (isinstance(item, int) or (text and text.isdigit())):
            raise ConfigError(f"{what} must be whole numbers >= 0 (a list, or a string such as '0,1,2'), got {value!r}")
        numbers.append(int(item))  # type: ignore[call-overload]
    if not numbers or min(numbers) < 0 or len(set(numbers)) != len(numbers):
        raise ConfigError(f"{what} must be distinct whole numbers >= 0, at least one, got {value!r}")
    return tuple(numbers)


def names(what: str, value: str) -> list[str]:
    """A comma-separated list of names (tables, conclusions, notebooks); an empty one is an error,
    not "all"."""
    found = [name.strip() for name in value.split(",") if name.strip()]
    if not found:
        raise ConfigError(f"{what} names nothing; leave it out for all")
    return found

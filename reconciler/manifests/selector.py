"""Calico label selectors: parse, evaluate, and print in Calico's canonical form.

Follows projectcalico/calico libcalico-go/lib/selector: the lexer in
`tokenizer/tokenizer.go` (its current form, where operators end at a word boundary
and keys are at most 512 characters; older forms had no key limit), the grammar in
`parser/parser.go` and the node semantics and canonical string form in `parser/ast.go`:

    or        := and ('||' and)*
    and       := operation ('&&' operation)*
    operation := '!'* (has(k) | all() | global() | k OP 'str' | k [not] in {set} | '(' or ')')

A run of `!` collapses to its parity (`!!a` is `a`), a parenthesised expression
yields its inner node, and `&&`/`||` build one n-ary node per parenthesis level.
Differences from Calico, all on the rejecting side: selectors longer than
MAX_LENGTH or nested deeper than MAX_DEPTH are refused, and `global()` must be
the whole selector (Calico's validator also lets `!global()` through).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import TypeAlias

MAX_LENGTH = 4096  # ours, not Calico's: bounds parse time and memory
MAX_DEPTH = 100  # nested parentheses; keeps the recursive parser far from RecursionError
MAX_KEY_LENGTH = 512  # tokenizer.go MaxLabelLength

_WHITESPACE = " \t"  # tokenizer.go trimWhitespace: a newline is not whitespace
_KEY = re.compile(r"[A-Za-z0-9_./-]+")  # tokenizer.go identifierChar


class SelectorError(ValueError):
    """A selector that Calico would reject. `position` is a 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _error(what: str, position: int, expected: str = "") -> SelectorError:
    detail = f": {expected}" if expected else ""
    return SelectorError(f"{what} at position {position}{detail}", position)


# ---------------------------------------------------------------------------
# AST


class Op(Enum):
    """A test of a label's value against a string; the value is the canonical spelling."""

    EQ = "=="
    NE = "!="
    CONTAINS = "contains"
    STARTS_WITH = "starts with"
    ENDS_WITH = "ends with"


# op -> (test of a present label's value, result when the label is absent) (ast.go)
_OP_RULES: dict[Op, tuple[Callable[[str, str], bool], bool]] = {
    Op.EQ: (operator.eq, False),
    Op.NE: (operator.ne, True),
    Op.CONTAINS: (operator.contains, False),
    Op.STARTS_WITH: (str.startswith, False),
    Op.ENDS_WITH: (str.endswith, False),
}


def _quote(value: str) -> str:
    # ast.go appendLabelOpAndQuotedString: double quotes unless the value holds one.
    return f"'{value}'" if '"' in value else f'"{value}"'


@dataclass(frozen=True, slots=True)
class All:
    def matches(self, labels: Mapping[str, str]) -> bool:
        return True

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global:
    """Rule namespaceSelector only: selects non-namespaced endpoints (callers interpret it).

    Like Calico's GlobalNode it matches any label set.
    """

    def matches(self, labels: Mapping[str, str]) -> bool:
        return True

    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class Has:
    key: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels

    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, slots=True)
class Compare:
    key: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        test, when_absent = _OP_RULES[self.op]
        actual = labels.get(self.key)
        return when_absent if actual is None else test(actual, self.value)

    def __str__(self) -> str:
        return f"{self.key} {self.op.value} {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class InSet:
    """`key in {...}`, or `key not in {...}` when negated (which matches an absent label)."""

    key: str
    values: frozenset[str]
    negated: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.key)
        return self.negated if actual is None else (actual in self.values) != self.negated

    def __str__(self) -> str:
        # ast.go collectInOpFragments; the set is sorted (stringset.go).
        op = "not in" if self.negated else "in"
        return f"{self.key} {op} {{{', '.join(_quote(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.operand.matches(labels)

    def __str__(self) -> str:
        return f"!{self.operand}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]  # two or more

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(o.matches(labels) for o in self.operands)

    def __str__(self) -> str:
        return f"({' && '.join(str(o) for o in self.operands)})"


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]  # two or more

    def matches(self, labels: Mapping[str, str]) -> bool:
        return any(o.matches(labels) for o in self.operands)

    def __str__(self) -> str:
        return f"({' || '.join(str(o) for o in self.operands)})"


Node: TypeAlias = All | Global | Has | Compare | InSet | Not | And | Or


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector. `str()` is Calico's canonical form and re-parses to an equal value.

    Round-tripping holds for everything parse_selector returns; a hand-built tree must
    be in parsed shape (no Not directly in a Not, And/Or with two or more operands,
    no value holding both quote characters, Global only as the root).
    """

    root: Node = All()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.root.matches(labels)

    @property
    def is_global(self) -> bool:
        return isinstance(self.root, Global)

    def __str__(self) -> str:
        return str(self.root)


# ---------------------------------------------------------------------------
# Lexer


class _Kind(Enum):
    LABEL = auto()
    STRING = auto()
    OPERATOR = auto()  # value: "==", "!=", "contains", "starts with", "ends with", "in", "not in"
    NOT = auto()
    AND = auto()
    OR = auto()
    LPAREN = auto()
    RPAREN = auto()
    LBRACE = auto()
    RBRACE = auto()
    COMMA = auto()
    HAS = auto()
    ALL = auto()
    GLOBAL = auto()
    INVALID = auto()  # something Calico's lexer rejects; the parser reports it in context
    EOF = auto()


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    start: int
    end: int
    value: str = ""


_PUNCTUATION: dict[str, _Kind] = {
    "==": _Kind.OPERATOR,
    "!=": _Kind.OPERATOR,
    "&&": _Kind.AND,
    "||": _Kind.OR,
    "!": _Kind.NOT,
    "(": _Kind.LPAREN,
    ")": _Kind.RPAREN,
    "{": _Kind.LBRACE,
    "}": _Kind.RBRACE,
    ",": _Kind.COMMA,
}
_HALF_OPERATORS = "=&|"  # a lone '=', '&' or '|' is an error in Calico

# Tried in this order right after a label. Words of one operator may be separated by
# whitespace or not ("notin", "startswith"); the operator must end at a word boundary.
_OPERATOR_WORDS: tuple[tuple[str, ...], ...] = (
    ("contains",),
    ("starts", "with"),
    ("ends", "with"),
    ("not", "in"),
    ("in",),
)

_CALLS: tuple[tuple[str, _Kind], ...] = (
    ("has(", _Kind.HAS),
    ("all(", _Kind.ALL),
    ("global(", _Kind.GLOBAL),
)


def _skip_whitespace(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _tokens(text: str) -> Iterator[_Token]:
    """Lazily, so that the parser reports the leftmost problem."""
    i, after_label = 0, False
    while True:
        token = _lex_one(text, _skip_whitespace(text, i), after_label=after_label)
        yield token
        if token.kind is _Kind.EOF:
            return
        i, after_label = token.end, token.kind is _Kind.LABEL


def _lex_one(text: str, i: int, *, after_label: bool) -> _Token:
    if i == len(text):
        return _Token(_Kind.EOF, i, i)
    if text[i] in "'\"":
        return _lex_string(text, i)
    punctuation = _lex_punctuation(text, i)
    if punctuation is not None:
        return punctuation
    if after_label:
        return _lex_operator_word(text, i)
    return _lex_word(text, i)


def _lex_string(text: str, i: int) -> _Token:
    # No escapes: the literal ends at the next matching quote, newlines included.
    close = text.find(text[i], i + 1)
    if close < 0:
        raise _error("unterminated string", i, f"no closing {text[i]!r}")
    return _Token(_Kind.STRING, i, close + 1, text[i + 1 : close])


def _lex_punctuation(text: str, i: int) -> _Token | None:
    for symbol in (text[i : i + 2], text[i]):
        kind = _PUNCTUATION.get(symbol)
        if kind is not None:
            return _Token(kind, i, i + len(symbol), symbol)
    if text[i] in _HALF_OPERATORS:
        return _Token(_Kind.INVALID, i, i + 1)
    return None


def _lex_operator_word(text: str, i: int) -> _Token:
    for words in _OPERATOR_WORDS:
        end = _cut_words(text, i, words)
        if end is not None:
            return _Token(_Kind.OPERATOR, i, end, " ".join(words))
    word = _KEY.match(text, i)
    return _Token(_Kind.INVALID, i, word.end() if word else i + 1)


def _cut_words(text: str, i: int, words: tuple[str, ...]) -> int | None:
    """End of `words` at i, as tokenizer.go cutPrefixCheckBreak / cutMultiWordPrefixCheckBreak."""
    for word in words:
        if not text.startswith(word, i):
            return None
        i += len(word)
        if len(words) > 1:
            i = _skip_whitespace(text, i)
    return None if _KEY.match(text, i) else i


def _lex_word(text: str, i: int) -> _Token:
    for prefix, kind in _CALLS:
        if text.startswith(prefix, i):
            return _lex_call(text, i, prefix=prefix, kind=kind)
    key = _key_at(text, i)
    if not key:
        return _Token(_Kind.INVALID, i, i + 1)
    return _Token(_Kind.LABEL, i, i + len(key), key)


def _key_at(text: str, i: int) -> str:
    match = _KEY.match(text, i)
    if match and len(match[0]) > MAX_KEY_LENGTH:
        raise _error("label key too long", i, f"keys are at most {MAX_KEY_LENGTH} characters")
    return match[0] if match else ""


def _lex_call(text: str, start: int, *, prefix: str, kind: _Kind) -> _Token:
    """has(key), all() and global(), which Calico lexes as single tokens."""
    i = _skip_whitespace(text, start + len(prefix))
    key = ""
    if kind is _Kind.HAS:
        key = _key_at(text, i)
        if not key:
            raise _error(_unexpected_char(text, i), i, "expected a label key")
        i = _skip_whitespace(text, i + len(key))
    if not text.startswith(")", i):
        raise _error(_unexpected_char(text, i), i, "expected ')'")
    return _Token(kind, start, i + 1, key)


def _unexpected_char(text: str, i: int) -> str:
    return f"unexpected {text[i]!r}" if i < len(text) else "unexpected end of selector"


# ---------------------------------------------------------------------------
# Parser

_EXPECT_OPERAND = "expected a label key, has(), all(), '!' or '('"
_EXPECT_OPERATOR = "expected ==, !=, in, not in, contains, starts with or ends with"
_EXPECT_STRING = "expected a quoted string"
_SET_OPERATORS = {"in": False, "not in": True}  # operator -> InSet.negated
_GLOBAL_RULES = {  # allow_global -> what the error says
    False: "global() is only allowed in a rule's namespaceSelector",
    True: "global() cannot be combined with other selectors",
}


class _Parser:
    """Recursive descent over a lazy token stream, mirroring parser.go."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._stream = _tokens(text)
        self._token = next(self._stream)
        self._depth = 0
        self.global_at: int | None = None  # where the first global() is

    def parse(self) -> Node:
        if self._at(_Kind.EOF):
            return All()
        node = self._or()
        self._expect(_Kind.EOF, "expected '&&', '||' or end of selector")
        return node

    def _at(self, kind: _Kind) -> bool:
        # A method, not an inline test: mypy would keep a narrowed kind across _advance().
        return self._token.kind is kind

    def _advance(self) -> _Token:
        token = self._token
        if token.kind is not _Kind.EOF:
            self._token = next(self._stream)
        return token

    def _expect(self, kind: _Kind, expected: str) -> _Token:
        if self._token.kind is not kind:
            raise self._unexpected(expected)
        return self._advance()

    def _unexpected(self, expected: str) -> SelectorError:
        token = self._token
        if token.kind is _Kind.EOF:
            return _error("unexpected end of selector", token.start, expected)
        shown = self._text[token.start : token.end].rstrip(_WHITESPACE)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return _error(f"unexpected {shown!r}", token.start, expected)

    def _or(self) -> Node:
        operands = [self._and()]
        while self._at(_Kind.OR):
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Node:
        operands = [self._operation()]
        while self._at(_Kind.AND):
            self._advance()
            operands.append(self._operation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _operation(self) -> Node:
        negated = False
        while self._at(_Kind.NOT):
            self._advance()
            negated = not negated
        parse_operand = _OPERANDS.get(self._token.kind)
        if parse_operand is None:
            raise self._unexpected(_EXPECT_OPERAND)
        node = parse_operand(self)
        return Not(node) if negated else node

    def _has(self) -> Node:
        return Has(self._advance().value)

    def _all(self) -> Node:
        self._advance()
        return All()

    def _global(self) -> Node:
        token = self._advance()
        if self.global_at is None:
            self.global_at = token.start
        return Global()

    def _parenthesised(self) -> Node:
        opening = self._advance()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _error("nesting too deep", opening.start, f"at most {MAX_DEPTH} parentheses")
        node = self._or()
        self._expect(_Kind.RPAREN, "expected '&&', '||' or ')'")
        self._depth -= 1
        return node

    def _comparison(self) -> Node:
        key = self._advance().value
        operator_ = self._expect(_Kind.OPERATOR, _EXPECT_OPERATOR).value
        if operator_ in _SET_OPERATORS:
            return InSet(key, self._set(), negated=_SET_OPERATORS[operator_])
        return Compare(key, Op(operator_), self._expect(_Kind.STRING, _EXPECT_STRING).value)

    def _set(self) -> frozenset[str]:
        """{'a', 'b'}: empty and trailing-comma forms are accepted, as in parser.go."""
        self._expect(_Kind.LBRACE, "expected '{'")
        values: list[str] = []
        expected = "expected a quoted string or '}'"
        while self._at(_Kind.STRING):
            values.append(self._advance().value)
            expected = "expected ',' or '}'"
            if not self._at(_Kind.COMMA):
                break
            self._advance()
            expected = "expected a quoted string or '}'"
        self._expect(_Kind.RBRACE, expected)
        return frozenset(values)


_OPERANDS: dict[_Kind, Callable[[_Parser], Node]] = {
    _Kind.HAS: _Parser._has,
    _Kind.ALL: _Parser._all,
    _Kind.GLOBAL: _Parser._global,
    _Kind.LABEL: _Parser._comparison,
    _Kind.LPAREN: _Parser._parenthesised,
}


def parse_selector(text: str, *, allow_global: bool = False) -> Selector:
    """Parse a Calico selector; empty or blank text is all().

    `allow_global` is for a rule's namespaceSelector, where global() may be the whole
    selector (validator.go: global() cannot be combined with other selectors).
    """
    if len(text) > MAX_LENGTH:
        raise _error("selector too long", MAX_LENGTH, f"at most {MAX_LENGTH} characters")
    parser = _Parser(text)
    root = parser.parse()
    if parser.global_at is not None and not (allow_global and isinstance(root, Global)):
        raise _error("unexpected global()", parser.global_at, _GLOBAL_RULES[allow_global])
    return Selector(root)

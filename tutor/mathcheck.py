"""Exact checks of the arithmetic and algebra a draft states, with SymPy.

Found in a draft (English or French notation, plain text or LaTeX): chains `a op b = c =
d`, percentages ("15% of 80", "15 % de 80"), fractions, powers and roots, conversions of
time, length and mass ("2 h = 120 min"), and — when the student's question holds an
equation or a computation — the value the draft gives for it. Every equality is checked
exactly (rationals; irrational values to 30 digits), decimals written as roundings
("1/3 = 0.33", "√2 ≈ 1.41") are accepted as such.

The text is never changed. What could not be checked (division by zero, numbers too big
to work out, a formula that does not parse, the time budget spent) is counted as "not
checked", never as correct. Expressions are parsed by a small parser of our own into
SymPy numbers: nothing is eval'd, exponents and number sizes are bounded, so one
statement cannot take long.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from dataclasses import dataclass, field

import sympy

MAX_TEXT_CHARS = 20_000  # beyond this a draft is not checked further (a reply is far shorter)
MAX_STATEMENT_TOKENS = 80
MAX_NUMBER_DIGITS = 30
MAX_RESULT_DIGITS = 300  # a power whose value would be longer is "not checked"
DEFAULT_BUDGET_S = 0.05


class Unchecked(Exception):
    """This statement cannot be checked exactly (its reason is a short code)."""


# --- Units: factor to the base unit of each dimension (second, metre, gram).

_UNITS: dict[str, tuple[str, sympy.Rational]] = {}


def _unit(dimension: str, factor: object, *names: str) -> None:
    for name in names:
        _UNITS[name] = (dimension, sympy.Rational(factor))


_unit("time", 1, "s", "sec", "secs", "second", "seconds", "seconde", "secondes")
_unit("time", 60, "min", "mins", "minute", "minutes")
_unit("time", 3600, "h", "hr", "hrs", "hour", "hours", "heure", "heures")
_unit("time", 86400, "day", "days", "jour", "jours", "j")
_unit("time", 604800, "week", "weeks", "semaine", "semaines")
_unit("length", sympy.Rational(1, 1000), "mm", "millimetre", "millimetres", "millimeter", "millimeters", "millimètre")
_unit("length", sympy.Rational(1, 1000), "millimètres")
_unit("length", sympy.Rational(1, 100), "cm", "centimetre", "centimetres", "centimeter", "centimeters", "centimètre")
_unit("length", sympy.Rational(1, 100), "centimètres")
_unit("length", sympy.Rational(1, 10), "dm", "décimètre", "décimètres", "decimetre", "decimetres")
_unit("length", 1, "m", "metre", "metres", "meter", "meters", "mètre", "mètres")
_unit("length", 1000, "km", "kilometre", "kilometres", "kilometer", "kilometers", "kilomètre", "kilomètres")
_unit("mass", sympy.Rational(1, 1000), "mg", "milligram", "milligrams", "milligramme", "milligrammes")
_unit("mass", 1, "g", "gram", "grams", "gramme", "grammes")
_unit("mass", 1000, "kg", "kilogram", "kilograms", "kilogramme", "kilogrammes", "kilo", "kilos")
_unit("mass", 1_000_000, "tonne", "tonnes")

_UNIT_NAMES = sorted(_UNITS, key=len, reverse=True)

# --- Normal form: LaTeX, Unicode and words turned into one plain notation.

_LATEX_SIMPLE = (
    (r"\\left|\\right|\\displaystyle|\\,|\\;|\\!|\\quad|\\qquad|\\ ", " "),
    (r"\\times|\\cdot|\\ast", "*"),
    (r"\\div", "/"),
    (r"\\approx|\\simeq", "≈"),
    (r"\\neq|\\ne\b", "≠"),
    (r"\\%", "%"),
    (r"\\pi\b", "π"),
    (r"\{,\}", ","),
)
_LATEX_WRAPPERS = re.compile(r"\\(?:text|mathrm|textrm|mathbf|operatorname|mbox)\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SQRT_N = re.compile(r"\\sqrt\s*\[([^\]]*)\]\s*\{([^{}]*)\}")
_LATEX_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_LATEX_POWER = re.compile(r"\^\s*\{([^{}]*)\}")
_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "⁴": "^4"})
_UNICODE_OPS = str.maketrans(
    {"×": "*", "⋅": "*", "·": "*", "∙": "*", "÷": "/", "∶": "/", "−": "-", "⁄": "/", "[": "(", "]": ")"}
)
_DIGIT_SPACE = re.compile(r"(?<=\d)[\u00a0\u202f\u2009](?=\d{3}\b)")  # "1 000" with a (narrow) no-break space
# French groups thousands with a plain space too ("2 500"): one to three digits, then groups of three.
_FR_DIGIT_SPACE = re.compile(r"(?<![\d.,])(\d{1,3})((?: \d{3})+)(?![\d,.]\d)")

# Words between two numbers that mean an operation or "equals" (lower-case, accents kept).
_N = r"(?<=[\d)%²³])"  # after something numeric
_WORD_OPS = (
    (re.compile(r"\b(?:the )?square root of\s+|\bracine carr[ée]e de\s+|\bracine de\s+"), " sqrt "),
    (re.compile(_N + r"\s*(?:squared|au carr[ée])\b"), "^2"),
    (re.compile(_N + r"\s*(?:cubed|au cube)\b"), "^3"),
    (re.compile(_N + r"\s+(?:to the power of|to the power|puissance)\s+(?=[-\d(])"), "^"),
    (re.compile(_N + r"\s+(?:times|multiplied by|multipli[ée]e? par|fois)\s+(?=[-\d(√s])"), " * "),
    (re.compile(_N + r"\s+(?:divided by|divis[ée]e? par)\s+(?=[-\d(√s])"), " / "),
    (re.compile(_N + r"\s+(?:plus)\s+(?=[-\d(√s])"), " + "),
    (re.compile(_N + r"\s+(?:minus|moins)\s+(?=[-\d(√s])"), " - "),
    (re.compile(r"(?<=\d)\s*(?:percent|per cent|pour ?cent)\b"), "%"),
    (re.compile(r"%\s*(?:of|de|des|du|d')\s*(?=[\d(])"), "% * "),
    (re.compile(r"(\d+\s*/\s*\d+)\s+(?:of|de|des|du)\s+(?=[\d(])"), r"(\1) * "),  # "3/4 of 20"
    # Speeds and rates are labels here, not units to convert: "40 km/h", "3 m par seconde".
    (
        re.compile(
            r"(?<=\d)\s*(km|m|cm|mm|kg|g)\s*(?:/|per|par|an|a|à l')\s*"
            r"(h|hr|hour|heure|s|sec|second|seconde|min|minute|l|litre|liter)\b"
        ),
        r" \1per\2",
    ),
    (re.compile(r"(?<=\d)\s*(?:[x×])\s*(?=\d)"), " * "),  # "3 x 4", "3x4": x between two numbers
    (
        re.compile(
            _N + r"\s+(?:is equal to|is|equals|makes|gives|are|"
            r"est [ée]gale? [àa]|fait|font|[ée]gale?|[ée]galent|vaut|valent|donne|donnent)\s+(?=[-\d(√s])"
        ),
        " = ",
    ),
)

# Words that, right after a number ending a statement, show it goes on in words
# ("5 is 2 more than 3"): such a statement is not what it looks like, so it is skipped.
_CONTINUES = {
    "more",
    "less",
    "fewer",
    "greater",
    "smaller",
    "bigger",
    "larger",
    "than",
    "times",
    "percent",
    "per",
    "over",
    "out",
    "plus",
    "moins",
    "fois",
    "que",
    "of",
    "de",
    "du",
    "des",
    "d",
    "par",
    "pour",
    "sur",
    "to",
    "à",
    "au",
}
# Words that make the number after them part of a phrase ("half of 20", "le double de 4").
_TAKES_A_NUMBER = {"half", "twice", "double", "quarter", "third", "moitié", "quart", "tiers", "triple", "dozen"}
# Words before a statement with a letter in it that make it an example, not a step.
_HYPOTHETICAL = re.compile(
    r"\b(?:if|suppose|assume|imagine|try|trying|test|e\.g|example|si|supposons|imaginons|essaie|essayons|"
    r"essayez|teste|testons|exemple)\b",
    re.IGNORECASE,
)


def normalise(text: str, *, decimal_comma: bool | None = None) -> str:
    """The text in one plain notation: LaTeX commands, Unicode signs and operation words
    turned into `+ - * / ^ = ≈ % sqrt`, decimal commas into points.

    decimal_comma: True (French text), False (English: "1,000" is a thousand), None (guess:
    a comma followed by exactly three digits groups thousands, any other between digits
    is a decimal comma).
    """
    text = unicodedata.normalize("NFC", text or "")
    text = text.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ").replace("$", " ")
    for _ in range(6):  # innermost first, a few levels deep
        before = text
        text = _LATEX_WRAPPERS.sub(r" \1 ", text)
        text = _LATEX_FRAC.sub(r"((\1)/(\2))", text)
        text = _LATEX_SQRT_N.sub(r"((\2)^(1/(\1)))", text)
        text = _LATEX_SQRT.sub(r"sqrt(\1)", text)
        text = _LATEX_POWER.sub(r"^(\1)", text)
        if text == before:
            break
    for pattern, replacement in _LATEX_SIMPLE:
        text = re.sub(pattern, replacement, text)
    text = text.replace("{", "(").replace("}", ")")
    text = text.translate(_SUPERSCRIPTS).translate(_UNICODE_OPS).replace("**", "^").replace("√", " sqrt ")
    text = re.sub(r"(?<=[\d)])\s*[–—]\s*(?=[\d(])", " - ", text)  # an en dash between numbers is a minus
    text = _DIGIT_SPACE.sub("", text)
    if decimal_comma:
        text = _FR_DIGIT_SPACE.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), text)
        text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    else:
        if decimal_comma is False:
            text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
        else:
            text = re.sub(r"\b(\d{1,3}(?:,\d{3})+)(?![\d,])", lambda m: m.group(1).replace(",", ""), text)
        text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    lowered = text.lower()
    for pattern, replacement in _WORD_OPS:
        lowered = pattern.sub(replacement, lowered)
    return lowered


# --- Tokens.

_TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<op>[-+*/^])"
    r"|(?P<lp>\()|(?P<rp>\))"
    r"|(?P<eq>=|≈|≃)"
    r"|(?P<ne>≠|<|>|≤|≥)"
    r"|(?P<pct>%)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)?)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)"
)


@dataclass
class Token:
    kind: str
    text: str
    start: int = 0
    spaced: bool = False  # whitespace before it


def tokenise(text: str) -> list[Token]:
    tokens: list[Token] = []
    spaced = False
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            spaced = True
            continue
        value = m.group()
        if kind == "word":
            if value == "sqrt":
                kind = "func"
            elif value in ("pi", "π"):
                kind = "pi"
            elif value in _UNITS and tokens and tokens[-1].kind in ("num", "rp"):
                kind = "unit"
            elif len(value) == 1 and value.isalpha() and value.isascii():
                kind = "var"
        tokens.append(Token(kind, value, m.start(), spaced))
        spaced = False
    # A lone letter is a variable only where it touches maths ("2x", "x = 4", "a² + b²");
    # elsewhere it is a word: French "a", "y", English "a", "I".
    for i, token in enumerate(tokens):
        if token.kind != "var":
            continue
        before = tokens[i - 1] if i else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        touches = (
            before is not None
            and (before.kind in ("op", "eq", "ne") or (before.kind in ("num", "lp") and not token.spaced))
        ) or (
            after is not None
            and (after.kind in ("op", "eq", "ne", "pct") or (after.kind in ("rp", "lp") and not after.spaced))
        )
        if not touches:
            token.kind = "word"
    return tokens


_MATH_KINDS = {"num", "op", "lp", "rp", "eq", "pct", "func", "pi", "unit", "var", "ne"}


@dataclass
class Side:
    value: sympy.Expr
    dimension: str | None  # "time", "length", "mass" when written with units
    shown: str  # as the draft wrote it, in plain notation
    literal: str | None  # a bare number as written ("10.15"), else None
    symbols: frozenset = frozenset()
    unit: str | None = None  # the last unit it was written in


class _Parser:
    """Recursive descent over one side's tokens, into exact SymPy numbers.

    expr := term (('+'|'-') term)* ; term := unary (('*'|'/'|implicit) unary)* ;
    unary := '-' unary | power ; power := postfix ('^' unary)? ;
    postfix := atom ('%' | unit)* ; atom := number | var | pi | '(' expr ')' | sqrt atom
    """

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0
        self.dimension: str | None = None
        self.unit: str | None = None
        self.after_unit = False  # the last atom read was a quantity with its unit
        self.symbols: set[str] = set()

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise Unchecked("incomplete")
        self.i += 1
        return token

    def parse(self) -> sympy.Expr:
        value = self.expr()
        if self.peek() is not None:
            raise Unchecked("unparsed")
        return value

    def expr(self):
        value = self.term()
        while (token := self.peek()) is not None and token.kind == "op" and token.text in "+-":
            self.take()
            right = self.term()
            value = value + right if token.text == "+" else value - right
        return value

    def term(self):
        value = self.unary()
        while (token := self.peek()) is not None:
            if token.kind == "op" and token.text in "*/":
                self.take()
                right = self.unary()
                if token.text == "*":
                    value = value * right
                else:
                    if right == 0:
                        raise Unchecked("division by zero")
                    value = value / right
            elif token.kind == "num" and self.after_unit:  # "2 h 30 min": a sum, not a product
                value = value + self.unary()
            elif token.kind in ("num", "var", "pi", "lp", "func"):  # implicit: "2x", "3(4)", "2√3"
                value = value * self.unary()
            else:
                break
        return value

    def unary(self):
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in "-+":
            self.take()
            value = self.unary()
            return -value if token.text == "-" else value
        return self.power()

    def power(self):
        base = self.postfix()
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == "^":
            self.take()
            exponent = self.unary()
            return _power(base, exponent)
        return base

    def postfix(self):
        value = self.atom()
        self.after_unit = False
        while (token := self.peek()) is not None and token.kind in ("pct", "unit"):
            self.take()
            if token.kind == "pct":
                value = value / 100
            else:
                dimension, factor = _UNITS[token.text]
                if self.dimension not in (None, dimension):
                    raise Unchecked("mixed units")
                self.dimension = dimension
                self.unit = token.text
                self.after_unit = True
                value = value * factor
                nxt = self.peek()
                if nxt is not None and nxt.kind == "op" and nxt.text == "^":
                    raise Unchecked("squared units")
        return value

    def atom(self):
        token = self.take()
        if token.kind == "num":
            digits = token.text.replace(".", "")
            if len(digits.lstrip("0")) > MAX_NUMBER_DIGITS:
                raise Unchecked("number too long")
            return sympy.Rational(token.text)
        if token.kind == "var":
            self.symbols.add(token.text)
            return sympy.Symbol(token.text)
        if token.kind == "pi":
            return sympy.pi
        if token.kind == "lp":
            value = self.expr()
            closing = self.take()
            if closing.kind != "rp":
                raise Unchecked("unbalanced")
            return value
        if token.kind == "func":
            argument = self.atom()
            if argument.is_number and argument.is_negative:
                raise Unchecked("root of a negative number")
            return sympy.sqrt(argument)
        raise Unchecked("unparsed")


def _power(base: object, exponent: object):
    if not exponent.is_number or not base.is_number:
        if exponent.is_Integer and abs(int(exponent)) <= 10:
            return base**exponent
        raise Unchecked("symbolic power")
    if not exponent.is_Rational:
        raise Unchecked("irrational power")
    if exponent.q > 12 or abs(exponent.p) > 10_000:
        raise Unchecked("power too big")
    magnitude = abs(sympy.N(base, 15)) if base != 0 else 0
    if magnitude > 1 and float(abs(exponent)) * math.log10(float(magnitude)) > MAX_RESULT_DIGITS:
        raise Unchecked("number too big")
    if base == 0 and exponent < 0:
        raise Unchecked("division by zero")
    if base.is_negative and exponent.q != 1:
        raise Unchecked("root of a negative number")
    return sympy.Pow(base, exponent)


def _shown(tokens: list[Token], decimal_comma: bool) -> str:
    """A side as a teacher reads it: `0.15 × 80`, `√(16)`, `15% × 80`."""
    out = ""
    for token in tokens:
        text = token.text
        if token.kind == "num" and decimal_comma:
            text = text.replace(".", ",")
        elif token.kind == "op":
            text = {"*": " × ", "/": "/", "+": " + ", "-": " - ", "^": "^"}[text]
            if token.text == "-" and (not out or out.endswith(("(", " "))):
                text = "-"
        elif token.kind == "func":
            text = "√"
        elif token.kind == "unit":
            text = " " + text + " "
        elif token.kind == "pi":
            text = "π"
        out += text
    out = re.sub(r"\s+", " ", out).strip()
    for _ in range(4):  # parentheses LaTeX left around a bare number or a fraction
        out = re.sub(r"\((-?[\d.,]+(?:/[\d.,]+)?)\)", r"\1", out)
    return out


def parse_side(tokens: list[Token], *, decimal_comma: bool = False) -> Side:
    if not tokens:
        raise Unchecked("empty side")
    parser = _Parser(tokens)
    value = parser.parse()
    literal = None
    if len(tokens) == 1 and tokens[0].kind == "num":
        literal = tokens[0].text
    elif len(tokens) == 2 and tokens[0].kind == "num" and tokens[1].kind == "unit":
        literal = tokens[0].text
    elif len(tokens) == 2 and tokens[0].kind == "op" and tokens[0].text == "-" and tokens[1].kind == "num":
        literal = "-" + tokens[1].text
    return Side(
        value=value,
        dimension=parser.dimension,
        shown=_shown(tokens, decimal_comma),
        literal=literal,
        symbols=frozenset(parser.symbols),
        unit=parser.unit,
    )


# --- Comparing two sides.


def _decimals(literal: str) -> int:
    return len(literal.split(".")[1]) if "." in literal else 0


def _close(a: object, b: object, *, approx: bool, literal: str | None) -> bool:
    """a equals b exactly, or b is a decimal written as a rounding of a."""
    difference = sympy.nsimplify(a - b) if (a.is_Rational and b.is_Rational) else None
    if difference is not None:
        if difference == 0:
            return True
        gap = abs(float(difference))
    else:
        gap = abs(float(sympy.N(a - b, 30)))
        if gap <= 1e-12 * max(1.0, abs(float(sympy.N(a, 15)))):
            return True
    if literal is not None:
        places = _decimals(literal)
        if places or approx:
            # A rounding to the written places; "≈" also accepts a last digit off by one.
            unit = 10.0**-places
            return gap <= (unit if approx else unit / 2) * (1 + 1e-9)
    return False


def format_number(value: object, *, decimal_comma: bool = False, literal_places: int | None = None) -> str:
    """A value as a teacher would write it: 12, 0.15, 2/3 (≈ 0.667), √2 ≈ 1.414."""
    value = sympy.nsimplify(value) if value.is_Rational else value
    if value.is_Integer:
        text = str(int(value))
    elif value.is_Rational:
        q = int(value.q)
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q == 1 and len(str(value.q)) <= 8:  # a finite decimal
            text = _trim_float(str(sympy.N(value, 20)))
        elif literal_places:
            text = f"{float(value):.{literal_places}f}"
        else:
            text = f"{value.p}/{value.q} ≈ {_trim_float(f'{float(value):.4g}')}"
    else:
        places = literal_places if literal_places else 4
        text = f"≈ {float(sympy.N(value, 20)):.{places}f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if decimal_comma else text


def _trim_float(text: str) -> str:
    if "e" in text or "E" in text:
        return text
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- Statements in a text.


@dataclass
class Wrong:
    shown: str  # "0.15 × 80"
    expected: str  # "12"
    found: str  # "10.15"
    context: str = ""  # e.g. "x = 4" when a step was checked with the exercise's solution


@dataclass
class Report:
    checked: int = 0  # equalities checked exactly
    correct: int = 0
    wrong: list[Wrong] = field(default_factory=list)
    unchecked: int = 0  # equalities seen that could not be checked
    complete: bool = True  # False: the time budget ran out (or the text was cut)
    gives_answer: bool | None = None  # decided exactly when the question holds an exercise
    final_statements: list[Side] = field(default_factory=list, repr=False)

    def as_json(self) -> dict:
        return {
            "checked": self.checked,
            "correct": self.correct,
            "wrong": [w.__dict__ for w in self.wrong],
            "unchecked": self.unchecked,
            "complete": self.complete,
            "gives_answer": self.gives_answer,
        }


@dataclass
class Exercise:
    """What the student's question asks to work out, solved."""

    kind: str  # "equation", "computation", "conversion"
    shown: str  # "2x + 3 = 11", "15% × 80", "2.5 h in min"
    unknown: str = ""  # the letter, for an equation
    values: list = field(default_factory=list)  # the solutions / the value (in `unit` for a conversion)
    unit: str = ""  # the unit asked for, for a conversion

    def fact(self, *, decimal_comma: bool = False) -> str:
        """One line of verified working for the model's prompt (never shown to a student)."""
        values = [format_number(v, decimal_comma=decimal_comma) for v in self.values]
        if self.kind == "equation":
            if not values:
                return f"{self.shown} has no real solution."
            return f"{self.shown} gives " + " or ".join(f"{self.unknown} = {v}" for v in values) + "."
        if self.kind == "conversion":
            return f"{self.shown} = {values[0]} {self.unit}."
        return f"{self.shown} = {values[0]}."


def _segments(text: str) -> list[str]:
    """Lines and sentences: a statement never runs across them. A full stop followed by a
    space ends a sentence; "3.5" does not."""
    return [s for s in re.split(r"\n+|(?<=[.!?;])\s+(?=\D)|(?<=[!?;:])\s+", text) if s.strip()]


def _runs(tokens: list[Token]) -> list[tuple[int, int]]:
    """Maximal stretches of maths tokens: [start, end) indexes."""
    runs, start = [], None
    for i, token in enumerate(tokens + [Token("end", "")]):
        mathy = token.kind in _MATH_KINDS
        if mathy and start is None:
            start = i
        elif not mathy and start is not None:
            runs.append((start, i))
            start = None
    return runs


@dataclass
class _Statement:
    sides: list[list[Token]]
    relations: list[str]  # "=" or "≈" between side i and i+1
    after: Token | None
    before: Token | None
    before_text: str
    has_ne: bool


def _statements(segment: str) -> list[_Statement]:
    tokens = tokenise(segment)
    found = []
    for start, end in _runs(tokens):
        run = tokens[start:end]
        if not any(t.kind == "eq" for t in run):
            continue
        # Trim what cannot begin or end a side: "(x = 2)" ends up "x = 2".
        while run and run[0].kind in ("rp", "op") and run[0].text not in "-(":
            run = run[1:]
        while run and run[-1].kind in ("lp", "op"):
            run = run[:-1]
        sides, relations, current = [], [], []
        for token in run:
            if token.kind == "eq":
                sides.append(current)
                relations.append("≈" if token.text != "=" else "=")
                current = []
            else:
                current.append(token)
        sides.append(current)
        _balance(sides)
        after = tokens[end] if end < len(tokens) else None
        found.append(
            _Statement(
                sides=sides,
                relations=relations,
                after=after,
                before=tokens[start - 1] if start > 0 else None,
                before_text=segment[: run[0].start] if run else "",
                has_ne=any(t.kind == "ne" for t in run),
            )
        )
    return found


def _balance(sides: list[list[Token]]) -> None:
    """Drop a parenthesis that opens before the first side or closes after the last one
    ("(so 3 + 4 = 7)")."""
    if sides and sides[0]:
        depth = sum(1 if t.kind == "lp" else -1 if t.kind == "rp" else 0 for t in sides[0])
        while depth > 0 and sides[0] and sides[0][0].kind == "lp":
            sides[0].pop(0)
            depth -= 1
    if sides and sides[-1]:
        depth = sum(1 if t.kind == "lp" else -1 if t.kind == "rp" else 0 for t in sides[-1])
        while depth < 0 and sides[-1] and sides[-1][-1].kind == "rp":
            sides[-1].pop()
            depth += 1


class _Deadline:
    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() > self.at


def check_text(
    text: str,
    *,
    question: str = "",
    decimal_comma: bool | None = None,
    budget_s: float | None = None,
    exercise: Exercise | None = None,
) -> Report:
    """Check every equality the text states. Never raises; never longer than about
    `budget_s` (DEFAULT_BUDGET_S; the statements left when it runs out count as not
    checked)."""
    budget_s = DEFAULT_BUDGET_S if budget_s is None else budget_s
    report = Report()
    deadline = _Deadline(budget_s)
    text = text or ""
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        report.complete = False
    if exercise is None and question:
        try:
            exercise = find_exercise(question, decimal_comma=decimal_comma)
        except Exception:  # noqa: BLE001 (a question we cannot read: no exercise to compare with)
            exercise = None
    comma = bool(decimal_comma) if decimal_comma is not None else bool(re.search(r"\d,\d(?!\d\d\d)", text))
    states_answer = False
    for segment in _segments(normalise(text, decimal_comma=decimal_comma)):
        if deadline.passed():
            report.complete = False
            break
        try:
            statements = _statements(segment)
        except Exception:  # noqa: BLE001
            report.unchecked += 1
            continue
        for statement in statements:
            if deadline.passed():
                report.complete = False
                report.unchecked += len(statement.relations)
                continue
            states_answer |= _check_statement(statement, report, exercise=exercise, decimal_comma=comma)
        if exercise is not None and exercise.kind == "conversion":
            states_answer |= _states_quantity(segment, exercise)
    if exercise is not None:
        states_answer |= _answer_phrase(text, exercise, decimal_comma=decimal_comma)
        report.gives_answer = states_answer
    return report


def _check_statement(statement: _Statement, report: Report, *, exercise: Exercise | None, decimal_comma: bool) -> bool:
    """Check one chain; returns True when it states the exercise's value."""
    n = len(statement.relations)
    if statement.has_ne or any(len(side) > MAX_STATEMENT_TOKENS for side in statement.sides):
        report.unchecked += n
        return False
    after = statement.after
    if after is not None and after.kind == "word" and after.text in _CONTINUES:
        return False  # "5 is 2 more than 3": not an equality
    sides: list[Side | None] = []
    for tokens in statement.sides:
        try:
            sides.append(parse_side(tokens, decimal_comma=decimal_comma))
        except Unchecked:
            sides.append(None)
        except Exception:  # noqa: BLE001 (SymPy on odd input: not checked, never a crash)
            sides.append(None)
    if all(s is None for s in sides):
        return False  # words and letters that only look like maths: nothing was stated
    dimensions = {s.dimension for s in sides if s is not None}
    if len(dimensions) == 2 and None in dimensions:
        # "2 × (3 + 4) = 14 cm": numbers on one side, the same number with its unit on the
        # other. The unit is read as a label there.
        sides = [_as_plain_number(s) if s is not None and s.dimension else s for s in sides]
        dimensions = {s.dimension for s in sides if s is not None}
    if len(dimensions) > 1:
        if None in dimensions and len(dimensions) == 2 and all(s is not None for s in sides):
            return False  # "the speed = 3 km" kind of text: not a conversion we can read
        report.unchecked += n
        return False
    hypothetical = bool(_HYPOTHETICAL.search(statement.before_text[-60:]))
    before = statement.before
    # "half of 20 = 10": words before the first side belong to it, so it is not what it looks like.
    skip_first = (
        before is not None and before.kind == "word" and (before.text in _CONTINUES or before.text in _TAKES_A_NUMBER)
    )
    gives = False
    for i in range(n):
        if i == 0 and skip_first:
            continue
        left, right = sides[i], sides[i + 1]
        if left is None or right is None:
            if left is not None or right is not None:
                report.unchecked += 1
            continue
        symbols = left.symbols | right.symbols
        approx = statement.relations[i] == "≈"
        try:
            if symbols:
                outcome = _check_with_solution(left, right, exercise, hypothetical, approx)
                if outcome is None:
                    continue  # a letter we know nothing about: not a statement we can check
                ok, context, expected_value, found_value = outcome
            else:
                ok = _close(left.value, right.value, approx=approx, literal=right.literal) or (
                    left.literal is not None and _close(right.value, left.value, approx=approx, literal=left.literal)
                )
                context, expected_value, found_value = "", left.value, right.value
        except Exception:  # noqa: BLE001
            report.unchecked += 1
            continue
        report.checked += 1
        if ok:
            report.correct += 1
            if exercise is not None and _states_value(left, right, exercise):
                gives = True
        else:
            places = _decimals(right.literal) if right.literal else None
            report.wrong.append(
                Wrong(
                    shown=left.shown,
                    expected=_in_unit_of(right, expected_value, decimal_comma=decimal_comma, places=places),
                    found=right.shown if not symbols else format_number(found_value, decimal_comma=decimal_comma),
                    context=context,
                )
            )
    return gives


def _as_plain_number(side: Side) -> Side:
    """A "14 cm" side as the number 14; other sides with units stay as they are."""
    if side.literal is None or not side.unit:
        return side
    return Side(value=sympy.Rational(side.literal), dimension=None, shown=side.shown, literal=side.literal)


def _in_unit_of(side: Side, value: object, *, decimal_comma: bool, places: int | None) -> str:
    """`value` written in the unit `side` was written in ("7200 s" as "120 min")."""
    if side.unit:
        value = value / _UNITS[side.unit][1]
        return format_number(value, decimal_comma=decimal_comma, literal_places=places) + " " + side.unit
    return format_number(value, decimal_comma=decimal_comma, literal_places=places)


def _check_with_solution(left: Side, right: Side, exercise: Exercise | None, hypothetical: bool, approx: bool):
    """A step with the exercise's unknown in it, checked by putting in the solution.
    None when it cannot be checked that way."""
    if exercise is None or exercise.kind != "equation" or not exercise.values or hypothetical:
        # Without the exercise's solution only an identity can be checked: "(x+1)^2 = x^2 + 2x + 1".
        if not hypothetical and sympy.expand(left.value - right.value) == 0:
            return True, "", left.value, right.value
        return None
    if (left.symbols | right.symbols) != {exercise.unknown}:
        return None
    symbol = sympy.Symbol(exercise.unknown)
    for value in exercise.values:
        a = left.value.subs(symbol, value)
        b = right.value.subs(symbol, value)
        if _close(a, b, approx=approx, literal=right.literal):
            return True, "", a, b
    value = exercise.values[0]
    context = f"{exercise.unknown} = {format_number(value)}"
    if left.value == symbol and not right.symbols:  # "x = 3": the value itself is wrong
        return False, "", value, right.value
    return False, context, left.value.subs(symbol, value), right.value.subs(symbol, value)


def _states_value(left: Side, right: Side, exercise: Exercise) -> bool:
    """This correct equality ends on the exercise's value ("… = 12", "x = 4")."""
    if exercise.kind == "equation":
        symbol = sympy.Symbol(exercise.unknown)
        sides = (left, right)
        for a, b in (sides, sides[::-1]):
            if a.value == symbol and not b.symbols and any(_same(b.value, v) for v in exercise.values):
                return True
        return False
    if exercise.kind == "conversion":
        return False  # read by _states_quantity with its unit
    return right.literal is not None and any(_same(right.value, v) for v in exercise.values)


def _same(a: object, b: object) -> bool:
    try:
        return _close(a, b, approx=False, literal=None)
    except Exception:  # noqa: BLE001
        return False


def _states_quantity(segment: str, exercise: Exercise) -> bool:
    """A conversion's answer stated with its unit: "150 min"."""
    dimension, factor = _UNITS[exercise.unit]
    tokens = tokenise(segment)
    for a, b in zip(tokens, tokens[1:], strict=False):
        if a.kind == "num" and b.kind == "unit" and _UNITS[b.text][0] == dimension:
            value = sympy.Rational(a.text) * _UNITS[b.text][1] / factor
            if any(_same(value, v) for v in exercise.values):
                return True
    return False


_ANSWER_WORDS = re.compile(
    r"(?:answer|result|solution|you get|we get|it's|it is|makes|réponse|résultat|on obtient|tu obtiens|"
    r"ça fait|cela fait|c'est|vaut|égale?)\s*(?:is|est|:)?\s*(-?\d+(?:[.,]\d+)?)",
    re.IGNORECASE,
)


def _answer_phrase(text: str, exercise: Exercise, *, decimal_comma: bool | None) -> bool:
    """ "The answer is 12", "la réponse est 12": the exercise's value in words."""
    if exercise.kind == "conversion":
        return False
    for m in _ANSWER_WORDS.finditer(text):
        number = m.group(1)
        if "," in number:
            number = number.replace(",", ".")
        try:
            value = sympy.Rational(number)
        except Exception:  # noqa: BLE001
            continue
        if any(_same(value, v) for v in exercise.values):
            return True
    return False


# --- The student's question: an equation to solve, or a computation to do.


def find_exercise(question: str, *, decimal_comma: bool | None = None) -> Exercise | None:
    """The one thing the question asks to work out, solved with SymPy; None when it holds
    no equation or computation (or more than one equation)."""
    if not question or len(question) > 2000:
        return None
    normal = normalise(question, decimal_comma=decimal_comma)
    comma = bool(decimal_comma) if decimal_comma is not None else bool(re.search(r"\d,\d", question))
    equations, computations = [], []
    tokens = tokenise(normal)
    for start, end in _runs(tokens):
        run = tokens[start:end]
        while run and run[-1].kind in ("lp", "op", "eq"):
            run = run[:-1]
        while run and run[0].kind in ("rp", "eq") or (run and run[0].kind == "op" and run[0].text not in "-("):
            run = run[1:]
        if not run or len(run) > MAX_STATEMENT_TOKENS:
            continue
        if any(t.kind == "eq" for t in run):
            parts, current = [], []
            for token in run:
                if token.kind == "eq":
                    parts.append(current)
                    current = []
                else:
                    current.append(token)
            parts.append(current)
            if len(parts) == 2:
                equations.append(parts)
        elif any(t.kind in ("op", "pct", "func") for t in run) and any(t.kind == "num" for t in run):
            computations.append(run)
    if len(equations) == 1:
        left_tokens, right_tokens = equations[0]
        try:
            left = parse_side(left_tokens, decimal_comma=comma)
            right = parse_side(right_tokens, decimal_comma=comma)
        except Unchecked:
            return None
        symbols = left.symbols | right.symbols
        if len(symbols) != 1:
            return None
        unknown = next(iter(symbols))
        solutions = _solve(left.value - right.value, sympy.Symbol(unknown))
        if solutions is None:
            return None
        return Exercise(kind="equation", shown=f"{left.shown} = {right.shown}", unknown=unknown, values=solutions)
    if equations:
        return None
    conversion = _find_conversion(tokens, comma)
    if conversion is not None:
        return conversion
    if len(computations) == 1:
        try:
            side = parse_side(computations[0], decimal_comma=comma)
        except Unchecked:
            return None
        if side.symbols or side.dimension:
            return None
        return Exercise(kind="computation", shown=side.shown, values=[side.value])
    return None


def _solve(expression: object, symbol: object) -> list | None:
    """Real solutions of expression = 0 for a polynomial of degree ≤ 4 (after clearing
    denominators); None when it is not one."""
    numerator, denominator = sympy.fraction(sympy.together(expression))
    try:
        poly = sympy.Poly(sympy.expand(numerator), symbol)
    except sympy.PolynomialError:
        return None
    if poly.degree() < 1 or poly.degree() > 4:
        return None
    roots = [r for r in sympy.roots(poly, filter="R") if denominator.subs(symbol, r) != 0]
    return sorted(roots, key=lambda r: float(r))


def _find_conversion(tokens: list[Token], comma: bool) -> Exercise | None:
    """ "Convert 2.5 h to minutes", "Combien de minutes dans 2,5 heures ?": one quantity and
    one other unit of the same kind."""
    quantities = [(a, b) for a, b in zip(tokens, tokens[1:], strict=False) if a.kind == "num" and b.kind == "unit"]
    if len(quantities) != 1:
        return None
    number, unit = quantities[0]
    dimension, factor = _UNITS[unit.text]
    targets = [
        t
        for t in tokens
        if t.kind in ("word", "unit", "var")
        and t is not unit
        and t.text in _UNITS
        and len(t.text) > 1
        and _UNITS[t.text][0] == dimension
        and _UNITS[t.text][1] != factor
    ]
    if len({_UNITS[t.text][1] for t in targets}) != 1:
        return None
    target = targets[0].text
    value = sympy.Rational(number.text) * factor / _UNITS[target][1]
    shown = f"{number.text.replace('.', ',') if comma else number.text} {unit.text}"
    return Exercise(kind="conversion", shown=shown, values=[value], unit=target)

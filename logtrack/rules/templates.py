"""Path templates, globs, user regexes and property templates, compiled to RE2 text (DESIGN §5).

- Path templates: `/products/{product_id:int}`, `{slug}`, `{rest:path}` (Starlette's converter
  names: str, int, float, path, uuid) and globs (`*` within a segment, `**` across segments),
  anchored at both ends.
- User regexes (`{regex: '^/p/(?P<sku>\\w+)$'}`) keep their named groups as captures; unnamed
  groups become non-capturing, because Arrow's `extract_regex` only accepts named ones.
- Property templates: `"{product_id}"`, `"{query.q}"`, `"{fields.cookie_plan}"`, `"{status}"`,
  with `{{` and `}}` for literal braces.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .model import Pattern, Ref, did_you_mean

# Converter name -> (RE2 fragment, value type). int is bounded to 18 digits so it always fits
# an int64: a longer number simply does not match the template.
CONVERTERS = {
    "str": ("[^/]+", "string"),
    "int": ("[0-9]{1,18}", "int"),
    "float": ("[0-9]+(?:\\.[0-9]+)?", "float"),
    "path": (".*", "string"),
    "uuid": ("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "string"),
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_REGEX_META = set(".^$*+?()[]{}|\\")


def is_identifier(text: str) -> bool:
    """A capture or property name: letters, digits, underscore, not starting with a digit."""
    return bool(_IDENT.match(text))


def check_regex(regex: str) -> str | None:
    """None when RE2 (as Arrow runs it) accepts `regex`, else the error text."""
    try:
        pc.match_substring_regex(pa.array([""]), regex)
    except pa.ArrowInvalid as exc:
        return str(exc).replace("Invalid regular expression: ", "")
    return None


def path_pattern(text: str) -> tuple[Pattern | None, str | None]:
    """Compile a path template or glob to an anchored Pattern; (None, error) when malformed."""
    out, prefix, captures = ["^"], [], []
    display, literal_run, i = [], True, 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            end = text.find("}", i)
            if end < 0:
                return None, f"unclosed '{{' in path template {text!r}"
            name, _, conv = text[i + 1:end].partition(":")
            name, conv = name.strip(), (conv.strip() or "str")
            if not is_identifier(name):
                return None, f"bad capture name {name!r} in {text!r} (use letters, digits, _)"
            if conv not in CONVERTERS:
                return None, (f"unknown capture type {conv!r} in {text!r}{did_you_mean(conv, list(CONVERTERS))}"
                              f"; types: {', '.join(CONVERTERS)}")
            if name in dict(captures):
                return None, f"capture {name!r} appears twice in {text!r}"
            fragment, typ = CONVERTERS[conv]
            out.append(f"(?P<{name}>{fragment})")
            captures.append((name, typ))
            display.append(f"{{{name}}}")
            literal_run, i = False, end + 1
            continue
        if ch == "}":
            return None, f"unmatched '}}' in path template {text!r}"
        if ch == "*":
            double = text.startswith("**", i)
            out.append(".*" if double else "[^/]*")
            display.append("**" if double else "*")
            literal_run, i = False, i + (2 if double else 1)
            continue
        out.append(re.escape(ch))
        display.append(ch)
        if literal_run:
            prefix.append(ch)
        i += 1
    out.append("$")
    shown = "".join(display)
    return Pattern(regex="".join(out), prefix="".join(prefix), captures=tuple(captures),
                   template=shown if captures else None), None


def glob_pattern(text: str, fold: str | None = None) -> Pattern:
    """A glob for non-path columns: `*` matches anything (`*.example.com`, `*Googlebot*`)."""
    regex = "^" + ".*".join(re.escape(p) for p in text.split("*")) + "$"
    prefix = text.split("*", 1)[0]
    if fold == "lower":
        regex, prefix = regex.lower(), prefix.lower()
    elif fold == "upper":
        regex, prefix = regex.upper(), prefix.upper()
    return Pattern(regex=regex, prefix=prefix)


def user_pattern(regex: str) -> tuple[Pattern | None, str | None]:
    """A user's `{regex: ...}`: search semantics (anchor with ^/$ yourself), named groups kept."""
    error = check_regex(regex)
    if error:
        return None, f"invalid regex {regex!r}: {error}"
    names = _NAMED_GROUP.findall(regex)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return None, f"group {dupes[0]!r} appears twice in regex {regex!r}"
    return Pattern(regex=regex, prefix=literal_prefix(regex),
                   captures=tuple((n, "string") for n in names)), None


def literal_prefix(regex: str) -> str:
    """The literal text every match of `^literal…` starts with ('' when unsure)."""
    if not regex.startswith("^") or "|" in regex:
        return ""
    out = []
    for ch in regex[1:]:
        if ch in _REGEX_META:
            # A quantifier after the last literal makes that literal optional: drop it.
            if ch in "*?{" and out:
                out.pop()
            break
        out.append(ch)
    return "".join(out)


def capturing_only_named(regex: str) -> str:
    """Rewrite unnamed groups `(…)` as `(?:…)` so `extract_regex` accepts the pattern."""
    out, i, in_class = [], 0, False
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member of the class.
            j = i + 1 + (regex[i + 1:i + 2] == "^")
            if regex[j:j + 1] == "]":
                out.append(regex[i:j + 1])
                i = j + 1
                continue
        elif ch == "(" and regex[i + 1:i + 2] != "?":
            out.append("(?:")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_template(text: str) -> tuple[tuple[str | Ref, ...] | None, str | None]:
    """Split a property template into text and Refs; (None, error) when malformed.

    Refs are 'query' (`{query.q}`), 'fields' (`{fields.cookie_plan}`) or 'name' (a capture or
    a request column; the loader decides which, captures first).
    """
    parts: list[str | Ref] = []
    buf, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i + 1:i + 2] == ch:
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            return None, f"unmatched '}}' in template {text!r} (write '}}}}' for a literal brace)"
        if ch == "{":
            end = text.find("}", i)
            if end < 0:
                return None, f"unclosed '{{' in template {text!r} (write '{{{{' for a literal brace)"
            ref = text[i + 1:end].strip()
            kind, dot, name = ref.partition(".")
            if dot and kind in ("query", "fields") and name:
                item = Ref(kind, name)
            elif not dot and is_identifier(ref):
                item = Ref("name", ref)
            else:
                return None, f"bad reference {{{ref}}} in template {text!r} (use {{capture}}, {{query.NAME}}, {{fields.NAME}} or a column)"
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(item)
            i = end + 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts), None

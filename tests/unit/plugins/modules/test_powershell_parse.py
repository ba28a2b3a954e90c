# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Syntax check of the Windows executors: every .ps1/.psm1 under plugins/ must parse with the
tree-sitter-powershell grammar without ERROR or MISSING nodes.

There is no PowerShell here, so a grammar is the check. The grammar mis-parses some valid PowerShell;
such false positives are listed in powershell_parse_ignore.yml, each entry matched narrowly (one file,
the exact text of one line, a construct whose match on that line contains the node, an exact count),
each proven to be a false positive by reproducing the same error on the same construct in a file
shipped with ansible-core or ansible.windows, and each failing the test once it no longer matches.

Needs tree-sitter and tree-sitter-powershell (installed in the project's virtual environment).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import ansible
import pytest
import tree_sitter
import tree_sitter_powershell
import yaml

COLLECTION_ROOT = pathlib.Path(__file__).resolve().parents[4]
PLUGINS = COLLECTION_ROOT / "plugins"
IGNORE_FILE = pathlib.Path(__file__).with_name("powershell_parse_ignore.yml")
# ansible-core and the ansible.windows collection are installed side by side in site-packages.
SITE_PACKAGES = pathlib.Path(ansible.__file__).resolve().parent.parent

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@dataclasses.dataclass(frozen=True)
class SyntaxProblem:
    kind: str  # "ERROR" or "MISSING"
    start_row: int
    start_col: int  # byte offsets, as tree-sitter reports them
    end_row: int
    end_col: int
    line: bytes  # the source line the node starts on

    def describe(self, name):
        return "%s:%d:%d: %s node in: %s" % (
            name, self.start_row + 1, self.start_col + 1, self.kind, self.line.decode("utf-8", "replace").strip())


@dataclasses.dataclass(frozen=True)
class IgnoreEntry:
    file: str
    line: str
    construct: re.Pattern
    count: int
    name: str
    why: str
    reference: str

    def covers(self, problem):
        """True when this entry explains one problem found in self.file."""
        if problem.start_row != problem.end_row:
            return False  # a node spanning lines could hide anything: never ignored
        if problem.line.strip().decode("utf-8") != self.line:
            return False
        return self.construct_contains(problem)

    def construct_contains(self, problem):
        """True when a match of the construct on the problem's line contains the node."""
        if problem.start_row != problem.end_row:
            return False
        for match in self.construct.finditer(problem.line):
            if match.start() <= problem.start_col and problem.end_col <= match.end():
                return True
        return False

    @property
    def label(self):
        return "%s: %s" % (self.file, self.name)


# A single-quoted here-string that holds C# rather than PowerShell (Add-Type source).
_CSHARP = re.compile(rb"\A\s*(?://[^\n]*\n\s*)*(?:using\s+[\w.]+\s*;|namespace\s)")


def syntax_problems(source, row_offset=0):
    """Every ERROR and MISSING node of the source (the outermost one of nested errors).

    Scripts embedded in single-quoted here-strings (written to disk and run by the modules, such as the
    scheduled-task launcher) are parsed too; their rows are reported as rows of the enclosing file.
    """
    tree = PARSER.parse(source)
    lines = source.split(b"\n")
    problems = []

    def walk(node):
        if node.is_error or node.is_missing:
            problems.append(SyntaxProblem(
                kind="ERROR" if node.is_error else "MISSING",
                start_row=node.start_point.row + row_offset,
                start_col=node.start_point.column,
                end_row=node.end_point.row + row_offset,
                end_col=node.end_point.column,
                line=lines[node.start_point.row].rstrip(b"\r"),
            ))
            return
        if node.type == "verbatim_here_string_characters":
            # @'<newline> ... <newline>'@ : the content starts on the line after the opening @'.
            text = source[node.start_byte:node.end_byte]
            body = text[text.index(b"\n") + 1:text.rindex(b"\n") + 1] if text.count(b"\n") >= 1 else b""
            if body.strip() and not _CSHARP.match(body):
                problems.extend(syntax_problems(body, row_offset + node.start_point.row + 1))
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return problems


def load_ignore_entries(path=IGNORE_FILE):
    with open(path, "rb") as f:
        raw = yaml.safe_load(f) or []
    entries = []
    for item in raw:
        entries.append(IgnoreEntry(
            file=item["file"],
            line=item["line"],
            construct=re.compile(item["construct"].encode("utf-8")),
            count=int(item.get("count", 1)),
            name=item["name"],
            why=item["why"],
            reference=item["reference"],
        ))
    return entries


def unexplained(problems, entries):
    """The problems no entry covers, and how many problems each entry covers."""
    used = dict.fromkeys(entries, 0)
    left = []
    for problem in problems:
        covering = [entry for entry in entries if entry.covers(problem)]
        if covering:
            for entry in covering:
                used[entry] += 1
        else:
            left.append(problem)
    return left, used


def powershell_files():
    return sorted(p for p in PLUGINS.rglob("*") if p.suffix.lower() in (".ps1", ".psm1") and p.is_file())


def relative(path):
    return path.relative_to(PLUGINS).as_posix()


ENTRIES = load_ignore_entries()
FILES = powershell_files()


def test_the_windows_executors_are_checked():
    names = {relative(p) for p in FILES}
    expected = {
        "modules/package.ps1",
        "modules/script.ps1",
        "modules/preflight.ps1",
        "modules/software_facts.ps1",
        "module_utils/_DepotWin.psm1",
    }
    assert expected <= names, "PowerShell files not found under %s: %s" % (PLUGINS, sorted(expected - names))


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_powershell_file_parses(path):
    name = relative(path)
    problems = syntax_problems(path.read_bytes())
    left, used = unexplained(problems, [e for e in ENTRIES if e.file == name])
    assert not left, "tree-sitter-powershell reports syntax errors:\n" + "\n".join(p.describe(name) for p in left)
    for entry, count in used.items():
        assert count == entry.count, (
            "ignore entry %r covers %d node(s) in %s, expected exactly %d: an extra error on an ignored line is"
            " a real error" % (entry.name, count, name, entry.count))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.label)
def test_ignore_entry_is_documented(entry):
    assert entry.name.strip() and entry.why.strip(), "every ignore entry names its construct and says why"
    assert (PLUGINS / entry.file).is_file(), "ignore entry for a file that does not exist: %s" % entry.file
    assert entry.count >= 1
    assert entry.construct.search(entry.line.encode("utf-8")), (
        "the construct %r does not occur on the ignored line %r" % (entry.construct.pattern, entry.line))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.label)
def test_ignore_entry_is_not_stale(entry):
    problems = syntax_problems((PLUGINS / entry.file).read_bytes())
    covered = [p for p in problems if entry.covers(p)]
    assert covered, (
        "stale ignore entry: %r no longer matches any syntax error in %s; remove it" % (entry.name, entry.file))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.label)
def test_ignore_entry_reproduces_in_known_good_reference(entry):
    """The grammar errors on the same construct in PowerShell that Ansible ships and runs every day."""
    reference = SITE_PACKAGES / entry.reference
    assert reference.is_file(), "reference file %s is not installed (ansible-core / ansible.windows)" % reference
    problems = syntax_problems(reference.read_bytes())
    reproduced = [p for p in problems if entry.construct_contains(p)]
    assert reproduced, (
        "the construct of %r does not produce a syntax error in %s: not proven to be a grammar false positive"
        % (entry.name, entry.reference))


# The checker itself ---------------------------------------------------------------------------------

BROKEN_SNIPPETS = {
    "unclosed block": b"Function Broken {\n    if ($true) {\n        'x'\n}\n",
    "unclosed parenthesis": b"$x = [Math]::Max(1, 2\n$y = 3\n",
    "missing if condition": b"if { 'x' }\n",
    "unterminated string": b"$x = 'no end\n$y = 1\n",
    "stray operator": b"$x = 1 +\n}\n",
}


@pytest.mark.parametrize("source", list(BROKEN_SNIPPETS.values()), ids=list(BROKEN_SNIPPETS))
def test_broken_snippet_is_reported(source):
    problems = syntax_problems(source)
    assert problems, "a broken snippet parsed without errors"
    left, _ = unexplained(problems, ENTRIES)
    assert left, "the ignore list hides a real syntax error"


def test_embedded_script_is_checked():
    source = b"$helper = @'\n$ok = 1\nif ($broken {\n'@\n$after = 2\n"
    problems = syntax_problems(source)
    assert problems and all(p.start_row >= 2 for p in problems), problems
    assert any(p.line == b"if ($broken {" for p in problems)


def test_embedded_csharp_is_not_parsed_as_powershell():
    source = b"$code = @'\nusing System;\nnamespace A { public class B { } }\n'@\n"
    assert syntax_problems(source) == []


def test_clean_snippet_is_not_reported():
    source = b"Function Get-Thing {\n    [CmdletBinding()]\n    param ([String]$Name)\n    \"Hello $Name\"\n}\n"
    assert syntax_problems(source) == []


def _entry_for(line, construct=rb"\b[0-9]+(?:KB|MB|GB|TB|PB)\b", count=1):
    return IgnoreEntry(file="snippet.ps1", line=line, construct=re.compile(construct), count=count,
                       name="test", why="test", reference="")


def test_ignore_entry_covers_only_its_line():
    good = "$free = [Math]::Floor($bytes / 1MB)"
    entry = _entry_for(good)
    source = ("%s\n$other = [Math]::Floor($bytes / 1GB)\n" % good).encode()
    left, used = unexplained(syntax_problems(source), [entry])
    assert used[entry] == 1
    assert [p.start_row for p in left] == [1], "the same construct on another line must still be reported"


def test_ignore_entry_does_not_hide_a_real_error_on_its_line():
    good = "$free = [Math]::Floor($bytes / 1MB)"
    entry = _entry_for(good)
    # The ignored construct next to a genuine mistake on a different line, and on the same line.
    source = ("%s\nif ($free -gt 1 {\n    'x'\n}\n" % good).encode()
    left, _ = unexplained(syntax_problems(source), [entry])
    assert left, "a real error next to an ignored line was hidden"
    broken_same_line = b"$free = [Math]::Floor($bytes / 1MB\n"
    left, _ = unexplained(syntax_problems(broken_same_line), [entry])
    assert left, "an ignored construct on a line that is also broken was hidden"


def test_ignore_entry_construct_must_contain_the_node():
    line = "$free = [Math]::Floor($bytes / 1MB)"
    entry = _entry_for(line, construct=rb"\$free")  # right line, wrong construct
    left, used = unexplained(syntax_problems((line + "\n").encode()), [entry])
    assert used[entry] == 0 and left


def test_stale_entry_is_detected():
    entry = _entry_for("$free = [Math]::Floor($bytes / 1MB)")
    clean = b"$free = [Math]::Floor($bytes / 1048576)\n"
    _, used = unexplained(syntax_problems(clean), [entry])
    assert used[entry] == 0

"""The README's "Connecting a client" snippets run as written against a live server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.builders.users import make_requester, make_token

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_toloka_kit_and_custom_vision_snippets_connect(jobs_live_server, session):
    token = make_token(session, make_requester(session, email="snippets@example.com"))
    blocks = _python_blocks(_section("Connecting a client"))
    assert len(blocks) == 2
    for code in blocks:
        code = code.replace("http://HOST:8000", jobs_live_server.url)
        namespace = {"TOKEN": token}
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["trainer"].get_domains()[0].name == "General"


def test_token_command_in_the_readme_is_a_real_command(session):
    section = _section("Connecting a client")
    command = re.search(r"crowdlab (token create [^)\n]+)", section).group(1).split()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *command[:2], "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in command[2:]:
        if option.startswith("--"):
            assert option in result.stdout

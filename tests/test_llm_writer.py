"""The llm writer end to end against a chat-completions server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.errors import ConfigurationError
from tasks.extract import extract_article
from tasks.llm_writer import numbered_sentences, parse_script
from tasks.models import Article, LLMOptions, StoryboardOptions
from tasks.suggest import is_caption_phrase, suggest_storyboard
from tasks.writers import write_storyboard

ROOT = Path(__file__).resolve().parents[1]
Reply = tuple[int, str, dict[str, str]] | str  # (status, assistant content or raw body, headers) or "hang"


@dataclass
class ChatServer:
    """A chat-completions endpoint answering each request with the next scripted reply (the last repeats)."""

    replies: list[Reply]
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(chat: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            n = len(chat.requests)
            chat.requests.append(body)
            chat.headers.append(dict(self.headers))
            reply = chat.replies[min(n, len(chat.replies) - 1)]
            if reply == "hang":
                chat.stop.wait(5)
                return
            status, content, extra = reply
            if status == 200 and self.path.endswith("/chat/completions"):
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
            else:
                payload = json.dumps({"error": {"message": content}})
            data = payload.encode()
            self.send_response(status if self.path.endswith("/chat/completions") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def chat() -> Iterator[Callable[..., ChatServer]]:
    servers: list[tuple[ThreadingHTTPServer, ChatServer]] = []

    def start(*replies: Reply) -> ChatServer:
        state = ChatServer(list(replies))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        servers.append((server, state))
        return state

    yield start
    for server, state in servers:
        state.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def article() -> Article:
    html = (ROOT / "examples" / "article.html").read_text(encoding="utf-8")
    return extract_article(html, "https://fieldnotes.example/lighthouses")


def number(article: Article, start: str) -> int:
    return next(n for n, (s, _) in enumerate(numbered_sentences(article), start=1) if s.startswith(start))


def script(article: Article, **change: dict) -> str:
    scenes = [
        {"narration": "For more than two thousand years, sailors have trusted their lives to lighthouses.",
         "caption": "A promise of light", "sources": [number(article, "For more than two thousand")]},
        {"narration": "A lamp thirty metres above the sea can be seen from twenty kilometres away.",
         "caption": "Height", "sources": [number(article, "A lamp thirty metres")]},
        {"narration": "In 1822 Augustin Fresnel designed a lens of glass prisms.", "caption": "The Fresnel lens",
         "sources": [number(article, "In 1822")]},
        {"narration": "Today most lighthouses run without keepers.", "caption": "Lighthouses without keepers",
         "sources": [number(article, "Today most lighthouses")]},
    ]
    for i, update in change.items():
        scenes[int(i[1:])].update(update)
    return json.dumps({"scenes": scenes})


def options(server: ChatServer, **llm: object) -> StoryboardOptions:
    settings = {"base_url": server.url, "model": "scripted", "timeout_s": 2, "attempts": 3, **llm}
    return StoryboardOptions(writer="llm", llm=LLMOptions(**settings))


def ok(content: str, **headers: str) -> Reply:
    return (200, content, headers)


def assert_llm_board(board, n_body: int = 4) -> None:
    assert board.scenes[0].kind == "title" and board.scenes[-1].kind == "closing"
    body = board.scenes[1:-1]
    assert len(body) == n_body and [s.id for s in body] == [f"s{k}" for k in range(1, n_body + 1)]
    assert all(s.sources for s in body)
    assert all(s.caption and len(s.caption) <= 48 for s in body)


def test_valid_json(chat, article: Article, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_LLM__API_KEY", "sk-test")
    server = chat(ok(script(article)))
    board = write_storyboard(article, options(server))
    assert_llm_board(board)
    assert all(s.writer == "llm" and s.repair is None for s in board.scenes[1:-1])
    assert board.scenes[3].narration == "In 1822 Augustin Fresnel designed a lens of glass prisms."
    assert board.scenes[4].caption == "Lighthouses without keepers"  # the model's caption, a noun phrase: kept
    # "The Fresnel lens" starts on a function word: the caption rule holds for every writer.
    assert board.scenes[3].caption != "The Fresnel lens" and is_caption_phrase(board.scenes[3].caption)
    request = server.requests[0]
    assert request["model"] == "scripted" and request["response_format"]["type"] == "json_schema"
    assert "scenes" in request["response_format"]["json_schema"]["schema"]["properties"]
    assert "1. For more than two thousand years" in request["messages"][1]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("wrap", [
    lambda s: f"```json\n{s}\n```",
    lambda s: f"<think>The reader wants {{scenes}}; keep it short.</think>\n{s}",
    lambda s: f"Here is the script:\n{s}\nHope it helps!",
], ids=["code-fence", "think", "chatter"])
def test_reply_wrapped_in_fences_or_thinking(chat, article: Article, wrap) -> None:
    server = chat(ok(wrap(script(article))))
    assert_llm_board(write_storyboard(article, options(server)))
    assert len(server.requests) == 1


def test_invalid_json_then_valid(chat, article: Article) -> None:
    server = chat(ok("Sure! The scenes: one, two, three."), ok('{"scenes": [{"caption": "no narration"}]}'),
                  ok(script(article)))
    assert_llm_board(write_storyboard(article, options(server)))
    assert len(server.requests) == 3


def test_scene_citing_a_sentence_that_does_not_exist_is_dropped(chat, article: Article) -> None:
    server = chat(ok(script(article, s1={"sources": [999]})))
    board = write_storyboard(article, options(server))
    assert_llm_board(board, 3)
    assert all("thirty metres" not in s.narration for s in board.scenes)


def test_scene_inventing_a_number_is_replaced_by_its_sources(chat, article: Article) -> None:
    invented = "In 1822 Augustin Fresnel designed a lens of 300 glass prisms."
    server = chat(ok(script(article, s2={"narration": invented})))
    board = write_storyboard(article, options(server))
    assert_llm_board(board)
    repaired = board.scenes[3]
    assert repaired.writer == "extractive" and "300" in (repaired.repair or "")
    assert repaired.narration.startswith("In 1822 the French physicist Augustin Fresnel designed a lens")
    named = chat(ok(script(article, s3={"narration": "Today most lighthouses in Norway run without keepers."})))
    assert "Norway" in (write_storyboard(article, options(named)).scenes[4].repair or "")


def test_server_without_structured_output_is_asked_plainer(chat, article: Article) -> None:
    refused = (400, "unknown field response_format", {})
    server = chat(refused, refused, ok(script(article)))
    assert_llm_board(write_storyboard(article, options(server, attempts=1)))
    formats = [r.get("response_format", {}).get("type") for r in server.requests]
    assert formats == ["json_schema", "json_object", None]
    stubborn = chat(refused)
    assert write_storyboard(article, options(stubborn)) == suggest_storyboard(article, StoryboardOptions())
    assert len(stubborn.requests) == 3


def test_429_then_success(chat, article: Article) -> None:
    server = chat((429, "slow down", {"Retry-After": "0"}), ok(script(article)))
    assert_llm_board(write_storyboard(article, options(server)))
    assert len(server.requests) == 2


@pytest.mark.parametrize("reply", [(500, "boom", {}), "hang"], ids=["500-forever", "hang"])
def test_failing_endpoint_falls_back_to_the_extractive_storyboard(chat, article: Article, reply: Reply,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    server = chat(reply)
    with caplog.at_level(logging.WARNING, logger="pagereel.llm_writer"):
        board = write_storyboard(article, options(server, timeout_s=0.5, attempts=2))
    assert board == suggest_storyboard(article, StoryboardOptions())
    assert all(s.writer == "extractive" and s.sources is None for s in board.scenes[1:-1])  # the manifest says so
    warnings = [r for r in caplog.records if r.name == "pagereel.llm_writer"]
    assert len(warnings) == 1 and "using the extractive writer" in warnings[0].getMessage()
    assert len(server.requests) == 2


def test_refused_key_is_one_clear_error(chat, article: Article) -> None:
    server = chat((401, "invalid api key", {}))
    with pytest.raises(ConfigurationError, match=r"refused the request \(HTTP 401\).*PAGEREEL_LLM__API_KEY"):
        write_storyboard(article, options(server))
    assert len(server.requests) == 1


def test_unreachable_or_unset_endpoint_falls_back(article: Article) -> None:
    unset = write_storyboard(article, StoryboardOptions(writer="llm"))
    assert unset == suggest_storyboard(article, StoryboardOptions())
    closed = StoryboardOptions(writer="llm", llm=LLMOptions(base_url="http://127.0.0.1:9/v1", attempts=1))
    assert write_storyboard(article, closed) == suggest_storyboard(article, StoryboardOptions())


def test_parse_script_strips_thinking_and_fences() -> None:
    reply = '<think>\n{"scenes": []}\n</think>\n```json\n{"scenes": [{"narration": "Hi there.", "sources": [1]}]}\n```'
    assert parse_script(reply).scenes[0].narration == "Hi there."
    with pytest.raises(ValueError):
        parse_script("no json here")


def test_the_llm_writer_marks_the_sections_its_scenes_open(chat) -> None:
    page = extract_article((ROOT / "tests" / "pages" / "sourdough-steps.html").read_text(encoding="utf-8"),
                           "https://example.org/sourdough")
    said = ["A kitchen scale matters more than any other tool.",
            "Add one hundred grams of starter and squeeze it through the dough with wet fingers.",
            "Cover the basket and leave it in the fridge overnight.",
            "The times in any recipe are guesses."]
    scenes = [{"narration": text, "caption": "Sourdough bread", "sources": [number(page, text[:30])]}
              for text in said]
    board = write_storyboard(page, options(chat(ok(json.dumps({"scenes": scenes})))))
    assert_llm_board(board)
    # A scene opens the section its first cited sentence is under, unless the scene before ended in it.
    assert [s.section for s in board.scenes[1:-1]] == ["What you need", "The method", None, "Reading the dough"]

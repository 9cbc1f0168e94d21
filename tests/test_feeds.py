"""Watched feeds: the list in the data dir, run by the watcher one by one with each result
noted, and the UI panel's add/remove. Feeds are served on 127.0.0.1 only."""

import threading

import pytest

from rag.errors import InvalidInput
from rag.feeds import FeedList, check_url
from tests.local_site import news_site
from tests.test_web import FAST


@pytest.fixture
def site():
    with news_site() as served:
        yield served


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "give the address of a feed or page"),
        ("   ", "give the address of a feed or page"),
        ("example.org/feed.xml", "is not a web address; give one starting with https://"),
        ("ftp://example.org/feed.xml", "is not a web address"),
        ("file:///etc/passwd", "is not a web address"),
        ("https://", "has no site name"),
        ("https://example.org:99999/feed", "not a valid web address"),
        ("https://a.example/x https://b.example/y", "no spaces"),
        ("https://user:pw@example.org/feed", "user name and password"),
        ("https://example.org/" + "a" * 2001, "the limit is 2000"),
    ],
)
def test_a_bad_url_is_refused_with_what_to_give_instead(text, error):
    with pytest.raises(InvalidInput, match=error):
        check_url(text)


def test_the_list_is_kept_in_the_data_dir_in_the_order_added(tmp_path):
    feeds = FeedList(tmp_path)
    assert feeds.all() == [] and not feeds.path.exists()  # reading creates nothing
    feeds.add(" https://b.example/feed.xml ")
    feeds.add("https://a.example/news")
    again = FeedList(tmp_path)  # another process, or after a restart
    assert again.urls() == ["https://b.example/feed.xml", "https://a.example/news"]
    assert again.get("https://a.example/news").last_run == ""
    with pytest.raises(InvalidInput, match="already watched"):
        again.add("https://a.example/news")
    again.remove("https://b.example/feed.xml")
    assert feeds.urls() == ["https://a.example/news"]
    with pytest.raises(InvalidInput, match="not watched"):
        feeds.remove("https://b.example/feed.xml")


def test_adding_from_two_threads_at_once_loses_nothing(tmp_path):
    feeds = FeedList(tmp_path)
    urls = [f"https://site{i}.example/feed.xml" for i in range(40)]
    threads = [threading.Thread(target=feeds.add, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(feeds.urls()) == sorted(urls)


@pytest.mark.e2e
def test_the_watcher_runs_each_feed_and_notes_what_it_added(site, settings, tmp_path):
    from rag.components import build
    from rag.ingest import Ingestor
    from rag.watch import Watcher

    news, feed = site
    missing = news.url("/gone.xml")
    settings = settings.model_copy(update=FAST)
    parts = build(settings)
    feeds = FeedList(settings.data_dir)
    feeds.add(feed)
    feeds.add(missing)
    watcher = Watcher(Ingestor(settings, parts.store, parts.embed), [], 60, feeds=feeds)
    watcher.run_once()
    ran = {f.url: f for f in feeds.all()}
    assert ran[feed].last_result == "2 added, 0 updated, 0 unchanged"
    assert ran[feed].total_added == 2 and ran[feed].last_error == ""
    assert "404" in ran[missing].last_error and ran[missing].last_run
    watcher.run_once()  # nothing new: the feed is unchanged
    again = feeds.get(feed)
    assert again.last_result == "0 added, 0 updated, 2 unchanged" and again.total_added == 2
    assert parts.store.count() > 0


@pytest.mark.e2e
def test_the_panel_adds_a_feed_runs_it_at_once_and_refuses_one_that_cannot_be_read(site, settings):
    from rag.components import build
    from rag.ingest import Ingestor
    from rag.watch import Watcher
    from ui.feeds import add_feed, remove_feed

    news, feed = site
    settings = settings.model_copy(update=FAST)
    parts = build(settings)
    feeds = FeedList(settings.data_dir)
    watcher = Watcher(Ingestor(settings, parts.store, parts.embed), [], 600, feeds=feeds)
    # A local site is refused unless the server was told to trust its network.
    said = add_feed(watcher, feed)
    assert said.startswith("⚠️ Not added") and "RAG_WEB_ALLOW_PRIVATE=true" in said
    assert feeds.urls() == []
    settings = settings.model_copy(update={"web_allow_private": True})
    watcher.ingestor = Ingestor(settings, parts.store, parts.embed)
    said = add_feed(watcher, feed)
    assert said.startswith(f"Watching {feed}: 2 added") and "every 10 min" in said
    assert "harbour" in " ".join(a.title.casefold() for a in parts.store.indexed().values())
    assert add_feed(watcher, "not a url").startswith("⚠️ Not added: 'not a url' is not a web")
    gone = news.url("/missing.xml")
    said = add_feed(watcher, gone)
    assert said.startswith("⚠️ Not added: nothing could be read") and "404" in said
    assert feeds.urls() == [feed]  # the unreadable one is not kept
    assert remove_feed(watcher, feed).startswith("Stopped watching")
    assert feeds.urls() == []
    assert "Pick a feed" in remove_feed(watcher, None)


def test_rag_feeds_lists_adds_and_removes(tmp_path, capsys):
    import json

    from rag import cli

    data = ["--data-dir", str(tmp_path)]
    assert cli.main([*data, "feeds"]) == 0
    assert "No feeds are watched" in capsys.readouterr().err
    assert cli.main([*data, "feeds", "add", "https://tarnby.example/feed.xml"]) == 0
    assert cli.main([*data, "feeds", "add", "tarnby.example/feed.xml"]) == 2
    assert "starting with https://" in capsys.readouterr().err
    FeedList(tmp_path).record("https://tarnby.example/feed.xml", None, error="HTTP 404")
    assert cli.main([*data, "feeds"]) == 0
    assert "last run 20" in capsys.readouterr().out
    assert cli.main([*data, "feeds", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["url"] == "https://tarnby.example/feed.xml" and listed["last_error"] == "HTTP 404"
    assert cli.main([*data, "feeds", "remove", "https://tarnby.example/feed.xml"]) == 0
    assert FeedList(tmp_path).urls() == []
    assert cli.main([*data, "feeds", "remove", "https://tarnby.example/feed.xml"]) == 2

"""The phone app tells the volunteer, once and in Chinese, what it collects, why and how long."""

from __future__ import annotations

from tests.e2e.chromium import wait_until


def test_the_notice_shows_once_in_chinese(browser, server, make_phone):
    phone = make_phone()
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN"
    )
    try:
        page = context.new_page()
        page.goto(f"{server.url}/m#token={phone.token}")
        wait_until(page, "window.trackerPhone && window.trackerPhone.ready === true")
        assert page.is_visible("#privacy-notice")
        notice = page.inner_text("#privacy-notice")
        for words in ("个人信息处理告知", "位置", "用途", "执勤", "90 天", "三年", "删除"):
            assert words in notice, words
        page.click("#notice-ok")
        assert not page.is_visible("#privacy-notice")
        page.reload()
        wait_until(page, "window.trackerPhone && window.trackerPhone.ready === true")
        assert not page.is_visible("#privacy-notice")
        assert page.evaluate("localStorage.getItem('tracker.noticeSeen')") == "1"
    finally:
        context.close()

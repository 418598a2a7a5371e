"""Hostile session values through the panel: safe HTML, identical cookies."""

from tests.support.toolbar import cookie_shape, namespaces, panel_html, text_of, toolbar_app


def test_hostile_values_render_safely_and_cookies_match_the_toolbar_off_run(redis_db, tmp_path):
    shapes = {}
    for mode in ("off", "inactive", "active"):
        app = toolbar_app(namespaces(redis_db, tmp_path / mode), mode)
        steps = [
            app.get("/hostile"),
            app.get("/s/redis"),
            app.post("/s/signed", {"value": "<b>x</b>"}),
            app.get("/drop"),
        ]
        shapes[mode] = [(r.status, r.body, cookie_shape(r)) for r in steps]
        if mode != "off":
            app.get("/hostile")
            html = panel_html(app)
            assert "<script>" not in html and "<b>x</b>" not in html
            text = text_of(html)
            assert "<script>alert('x')</script>" in text  # shown, as text
            assert "repr failed" in text
    assert shapes["inactive"] == shapes["off"]
    assert shapes["active"] == shapes["off"]

"""The worker API builds its URLs from templates (hype.web.worker_api) instead of url_for, which an
answer would call up to seven times: the templates must give exactly what url_for gives, also when
the app is mounted under a prefix (a proxy's X-Forwarded-Prefix, SCRIPT_NAME)."""

from __future__ import annotations

import pytest
from flask import request, url_for

from hype.web.worker_api import MASK_URL, SESSION_PAGE_URL, TRIAL_IMAGE_URL

pytestmark = pytest.mark.db


@pytest.mark.parametrize("base_url", ["http://localhost/", "https://hype.example.org/lab/hype/"])
def test_url_templates_match_url_for(app, base_url):
    token, image_token = "T" * 43, "i-Mg_0" * 3
    with app.test_request_context("/", base_url=base_url):
        root = request.script_root
        assert SESSION_PAGE_URL.format(root=root, token=token) == url_for("worker.session_page", token=token)
        assert TRIAL_IMAGE_URL.format(root=root, token=token, image_token=image_token) == url_for(
            "worker_api.trial_image", token=token, image_token=image_token)
        assert MASK_URL.format(root=root, token=token, index=3) == url_for("worker_api.mask_image", token=token, index=3)

"""The front server: nginx in front of one or more hype app servers, serving image bytes itself.

The app still decides whether an image may be shown (and counts the presentation); it then answers
with an `X-Accel-Redirect` to an internal nginx location instead of the bytes, so no Python process
reads or sends a file. `hype nginx-config` writes the configuration (hype.proxy.nginx).
"""

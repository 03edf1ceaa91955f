"""``mofrr serve``: a local web page to restore one photo at a time and download its forensic report.

- :mod:`mofrr_core.web.jobs`: one upload -> restored PNG + report folder + zip, in a work folder (no gradio).
- :mod:`mofrr_core.web.views`: what the page shows, as plain data and matplotlib figures (no gradio).
- :mod:`mofrr_core.web.app`: the Gradio page.
- :mod:`mofrr_core.web.offline`: the ASGI middleware that keeps the page from loading anything from the internet.
- :mod:`mofrr_core.web.serve`: the command (``pip install 'mofrr[web]'``).

Gradio is imported only by ``app``/``serve`` at run time, so ``mofrr`` works without the ``web`` extra.
"""

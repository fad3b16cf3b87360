"""mkdocs hooks for the docs site (mkdocs.yml: hooks).

The docstrings use numpydoc's Sphinx roles (:func:`x`, :class:`x`, ...); mkdocstrings renders
them as text before the code, so this drops the role and keeps the code.
"""
import re

ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj):(?=<code>)")


def on_page_content(html, page, config, files):
    return ROLE.sub("", html)

"""The OpenAPI 3.1 meta-schema, to check that paygate's whole document is valid OpenAPI.

`openapi_3_1_schema.json` is the OpenAPI Initiative's published schema for OpenAPI 3.1 documents
(`https://spec.openapis.org/oas/3.1/schema/2022-10-07`, the revision with `$ref` on path items; Apache-2.0), kept
here so that the check does not depend on where a test tool keeps its private copy. It describes the document's
structure; the Schema Objects inside it are checked by the tests that validate real replies against them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

_SCHEMA = Path(__file__).with_name("openapi_3_1_schema.json")


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def openapi_31_problems(document: dict[str, Any]) -> Iterator[str]:
    """Each way `document` breaks the OpenAPI 3.1 meta-schema, as `path: message`."""
    for error in _validator().iter_errors(document):
        yield f"{'/'.join(map(str, error.absolute_path))}: {error.message}"

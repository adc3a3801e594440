"""``python -m kiosk.voice.pinyin_worker``: a JSON list of Chinese texts on stdin, their tone-numbered
pinyin (``kiosk.voice.render.to_pinyin``) as a JSON list on stdout.

The renderer runs this as a short-lived child so that pypinyin's dictionaries (~55 MB) are loaded
and freed here, never in the service (kiosk.voice.render.pinyin_in_child).
"""

from __future__ import annotations

import json
import sys

from kiosk.voice.render import to_pinyin


def main() -> int:
    try:
        texts = json.loads(sys.stdin.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        print(f"pinyin: expected a JSON list of texts: {exc}", file=sys.stderr)
        return 2
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        print("pinyin: expected a JSON list of texts", file=sys.stderr)
        return 2
    try:
        out = [to_pinyin(t) for t in texts]
    except ImportError as exc:
        print(f"pinyin: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

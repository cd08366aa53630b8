#!/usr/bin/python3
"""Reference renderer for xnai's chat templates: real Jinja2, configured as
Hugging Face configures it for apply_chat_template.

  chat_template_oracle.py [--now EPOCH] TEMPLATE CONTEXT.json
      Prints the rendering exactly (no newline added) and exits 0. When the
      template calls raise_exception(msg): prints "raise_exception: msg" to
      stderr and exits 2; any other error: "<ExceptionType>: msg" to stderr,
      exit 3.

  chat_template_oracle.py [--now EPOCH] --json TEMPLATE CONTEXT [TEMPLATE CONTEXT ...]
      Renders every pair and prints one JSON object per line:
      {"template", "context", "ok": true, "output"} or
      {"template", "context", "ok": false, "raised": bool, "error_type", "message"}
      ("raised" is true when the error came from raise_exception).

CONTEXT.json is an object whose keys become the template's variables (object
key order is kept). --now pins strftime_now to a Unix time (still rendered in
local time, as datetime.now() is) so renders are reproducible.

Needs Debian's python3-jinja2; run it with /usr/bin/python3.
"""

import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    """What raise_exception() raises (a TemplateError, as in HF)."""


def make_environment(now=None):
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        moment = datetime.now() if now is None else datetime.fromtimestamp(now)
        return moment.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def message_of(error):
    """The raise_exception argument as the user sees it (str() of it)."""
    return str(error.args[0]) if error.args else ""


def render(env, template_path, context_path):
    with open(template_path, encoding="utf-8") as f:
        source = f.read()
    with open(context_path, encoding="utf-8") as f:
        context = json.load(f)
    if not isinstance(context, dict):
        raise ValueError(f"{context_path}: the context must be a JSON object")
    return env.from_string(source).render(**context)


def main(argv):
    now = None
    as_json = False
    args = list(argv)
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--now" and args:
            now = float(args.pop(0))
        elif flag == "--json":
            as_json = True
        else:
            print(__doc__, file=sys.stderr)
            return 64
    if len(args) < 2 or len(args) % 2 != 0 or (not as_json and len(args) != 2):
        print(__doc__, file=sys.stderr)
        return 64
    env = make_environment(now)
    if not as_json:
        try:
            output = render(env, args[0], args[1])
        except RaisedByTemplate as e:
            print(f"raise_exception: {message_of(e)}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - any Jinja2 or Python error
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            return 3
        sys.stdout.write(output)
        return 0
    for template_path, context_path in zip(args[0::2], args[1::2]):
        record = {"template": template_path, "context": context_path}
        try:
            record["output"] = render(env, template_path, context_path)
            record["ok"] = True
        except RaisedByTemplate as e:
            record.update(ok=False, raised=True, error_type="TemplateError", message=message_of(e))
        except Exception as e:  # noqa: BLE001
            record.update(ok=False, raised=False, error_type=type(e).__name__, message=str(e))
        print(json.dumps(record, ensure_ascii=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

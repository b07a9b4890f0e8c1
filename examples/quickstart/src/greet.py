"""The quickstart's tiny program: prints a greeting, or checks itself with --self-test."""

import os
import sys


def greeting(name: str) -> str:
    style = os.environ.get("GREETING_STYLE", "plain")
    text = f"Hello, {name}!"
    return text.upper() if style == "loud" else text


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        assert greeting("pipeline") == "Hello, pipeline!"
        print("self-test passed")
    else:
        print(greeting("pipeline"))

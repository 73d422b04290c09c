"""The ``driftmon`` command line. Thin: parses arguments, calls the package, maps exit codes.

Exit codes: 0 success, 1 runtime failure, 2 invalid configuration / profile / usage,
3 (``check-config`` only) a valid config that ``run`` cannot start with yet: a reference
profile not built yet or no ``kafka`` section. Every command loads its config through
``monitor.app.preflight``, which resolves file paths once, against the config's directory.
No user error prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import __version__
from monitor.errors import (
    CheckpointError,
    ConfigError,
    ConfigProblem,
    DriftmonError,
    ProfileError,
    UsageError,
)

if TYPE_CHECKING:
    from monitor.config import Config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_NOT_READY = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftmon", description="Streaming drift and model-monitoring daemon."
    )
    parser.add_argument("--version", action="version", version=f"driftmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon (Kafka in, metrics and webhooks out)")
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    run.add_argument("--max-events", type=int, default=None, help="stop after this many events")

    check = sub.add_parser(
        "check-config",
        help="everything run checks before connecting; exit 2 listing every problem, "
        "3 when valid but run cannot start yet (a profile not built, no kafka section)",
    )
    check.add_argument("config", type=Path)

    base = sub.add_parser("baseline", help="build a reference profile from a JSONL or CSV file")
    base.add_argument("--config", required=True, type=Path)
    base.add_argument("--model", required=True)
    base.add_argument("--input", required=True, type=Path)
    base.add_argument("--output", required=True, type=Path)
    _message_file_arguments(base)

    rep = sub.add_parser("replay", help="run the pipeline over a JSONL file of events, no Kafka")
    rep.add_argument("--config", required=True, type=Path)
    rep.add_argument("--input", required=True, type=Path)
    rep.add_argument("--output", type=Path, default=None, help="report file (default stdout)")
    _message_file_arguments(rep)

    demo = sub.add_parser("demo", help="the whole loop on this machine, nothing to set up")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds; 0 runs until Ctrl-C")
    demo.add_argument(
        "--bootstrap", default=None, help="use this broker instead of the embedded one"
    )
    demo.add_argument("--port", type=int, default=0, help="HTTP port of the daemon (0 = free port)")
    demo.add_argument("--rate", type=float, default=5000.0, help="events per second produced")
    demo.add_argument(
        "--producer-only", action="store_true", help="only run the synthetic producer"
    )
    demo.add_argument("--plain", action="store_true", help="no live table, log lines only")

    hook = sub.add_parser("webhook", help="webhook tools")
    hook_sub = hook.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    test = hook_sub.add_parser("test", help="send a clearly marked test event to one webhook")
    test.add_argument("--config", required=True, type=Path)
    test.add_argument("name")
    listing = hook_sub.add_parser(
        "abandoned", help="list the triggers webhooks gave up on (kept in state.dir's outbox)"
    )
    listing.add_argument("--config", required=True, type=Path)
    for action, text in (
        ("retry", "send abandoned triggers again (the running daemon picks them up)"),
        ("ack", "acknowledge abandoned triggers: drop them, never send them"),
    ):
        act = hook_sub.add_parser(action, help=text)
        act.add_argument("--config", required=True, type=Path)
        which = act.add_mutually_exclusive_group(required=True)
        which.add_argument("name", nargs="?", default=None, help="the webhook")
        which.add_argument("--all", action="store_true", help="every webhook")
        act.add_argument("--event", default=None, help="only this event id")

    for p in (run, rep, demo, base):
        p.add_argument("--log-level", default=None, help="debug, info, warning, error")
        p.add_argument("--log-format", choices=("text", "json"), default=None)
    return parser


def _configure_logging(args: argparse.Namespace, level: str = "info", fmt: str = "text") -> None:
    from monitor.log import configure_logging

    configure_logging(
        getattr(args, "log_level", None) or level, getattr(args, "log_format", None) or fmt
    )


def _cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.app.preflight import Command, preflight

    checked = preflight(args.config, Command.CHECK)
    config = checked.config
    summary = (
        f"{len(config.models)} model(s): {', '.join(config.models)}; "
        f"{len(config.webhooks)} webhook(s)"
    )
    if checked.pending:
        print(f"{args.config}: valid ({summary}), but `driftmon run` cannot start yet:")
        for problem in checked.pending:
            print(f"  {problem.path}: {problem.message}\n      hint: {problem.hint}")
        return EXIT_NOT_READY
    print(f"{args.config}: OK ({summary})")
    for name, model in config.models.items():
        alerting = model.alert.describe()
        if alerting:
            print(f"  {name}: {alerting}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from monitor.app.daemon import Daemon
    from monitor.app.preflight import Command, preflight

    checked = preflight(args.config, Command.RUN)
    config = checked.config
    _configure_logging(args, config.log.level, config.log.format)
    daemon = Daemon(config, references=checked.references)
    return daemon.run(max_seconds=args.max_seconds, max_events=args.max_events)


def _message_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-format",
        choices=("lines", "delimited"),
        default="lines",
        help="lines: one message per line (JSON); delimited: varint-length-prefixed "
        "messages (protobuf), see the README",
    )
    parser.add_argument(
        "--topic",
        default=None,
        help="the kafka.topics entry (or a topic its pattern matches) whose format reads "
        "the file; default: the first",
    )


def _topic_of(config: Config, topic: str | None) -> str | None:
    """``--topic`` as given, once it is known to name a configured topic."""
    if topic is None:
        return None
    try:
        config.topic(topic)
    except KeyError:
        names = "kafka.topics: " + ", ".join(t.name for t in config.topics)
        problem = ConfigProblem("--topic", f"{topic!r} is not a configured topic", names)
        raise UsageError(problem) from None
    return topic


def _cmd_baseline(args: argparse.Namespace) -> int:
    from monitor.app.baseline import build_reference, calibrate_reference, save_reference
    from monitor.app.kernels import compile_notice
    from monitor.app.preflight import Command, preflight

    config = preflight(args.config, Command.BASELINE).config
    _configure_logging(args)
    _require_input(args.input)
    messages = (args.input_format, _topic_of(config, args.topic))
    with compile_notice():  # a first run compiles its kernels: say so, not a silent wait
        profile, performance, rejected = build_reference(config, args.model, args.input, messages)
        calibration = calibrate_reference(config, args.model, profile)
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        save_reference(args.output, profile, performance, calibration)
    except OSError as exc:
        raise _cannot("--output", "write", args.output, exc) from None
    features = len(profile.features)
    labelled = (
        f", reference performance on {performance.events} labelled prediction(s)"
        if performance is not None
        else ""
    )
    calibrated = (
        f", calibrated for {calibration.calibration.budget.false_alarms_per_month:g} false "
        f"alarm(s) a month in {calibration.seconds:.1f} s"
        if calibration is not None
        else ""
    )
    print(
        f"wrote {args.output}: model {args.model}, {features} feature(s){labelled}"
        f"{calibrated}, {rejected.total} row(s) rejected"
    )
    for line in rejected.report():
        print(line)
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    from monitor.app.kernels import scanner_aside
    from monitor.app.preflight import Command, preflight
    from monitor.app.replay import replay

    checked = preflight(args.config, Command.REPLAY)
    config, references = checked.config, checked.references or {}
    _configure_logging(args, config.log.level, config.log.format)
    _require_input(args.input)
    read: dict[str, Any] = {
        "input_format": args.input_format,
        "topic": _topic_of(config, args.topic),
    }
    with scanner_aside():  # a short replay never waits for the scanner to compile
        if args.output is None:
            summary = replay(config, references, args.input, sys.stdout.buffer, **read)
        else:
            try:
                handle = args.output.open("wb")
            except OSError as exc:
                raise _cannot("--output", "write", args.output, exc) from None
            with handle:
                summary = replay(config, references, args.input, handle, **read)
    for line in summary.report():
        print(line, file=sys.stderr)
    return EXIT_OK


def _require_input(path: Path) -> None:
    """An unreadable --input is a usage error named before any work starts."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise _cannot("--input", "read", path, exc) from None


def _cannot(option: str, verb: str, path: Path, exc: OSError) -> UsageError:
    return UsageError(
        ConfigProblem(option, f"cannot {verb} {path}: {exc.strerror or exc}", "check the path")
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo.runner import run_demo

    _configure_logging(args, "warning")
    return run_demo(
        duration_seconds=args.duration,
        bootstrap=args.bootstrap,
        http_port=args.port,
        rate=args.rate,
        producer_only=args.producer_only,
        live_table=not args.plain and sys.stdout.isatty(),
    )


def _cmd_webhook(args: argparse.Namespace) -> int:
    from monitor.config import load_config
    from monitor.webhooks.delivery import send_test_event

    config = load_config(args.config)
    if args.webhook_command != "test":
        return _webhook_outbox(args, config)
    hooks = {w.name: w for w in config.webhooks}
    if args.name not in hooks:
        known = ", ".join(sorted(hooks)) or "(none configured)"
        print(f"no webhook named {args.name!r}; configured: {known}", file=sys.stderr)
        return EXIT_CONFIG
    result = send_test_event(hooks[args.name])
    print(result.describe())
    return EXIT_OK if result.ok else EXIT_FAILURE


def _webhook_outbox(args: argparse.Namespace, config: Config) -> int:
    import sqlite3

    from monitor.app.outbox_admin import (
        Selection,
        list_abandoned,
        open_state_outbox,
        retry_or_ack,
    )

    outbox = open_state_outbox(config)
    try:
        if args.webhook_command == "abandoned":
            lines = list_abandoned(outbox)
        else:
            selection = Selection(None if args.all else args.name, args.event)
            configured = [w.name for w in config.webhooks]
            lines = retry_or_ack(outbox, selection, args.webhook_command, configured)
    except sqlite3.Error as exc:  # e.g. locked for longer than SQLite's 5 s busy timeout
        raise DriftmonError(f"webhook outbox {outbox.path}: {exc}") from None
    finally:
        outbox.close()
    print("\n".join(lines))
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "check-config": _cmd_check_config,
    "baseline": _cmd_baseline,
    "replay": _cmd_replay,
    "demo": _cmd_demo,
    "webhook": _cmd_webhook,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftmon`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except (ProfileError, CheckpointError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DriftmonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        # The environment failed us (a disk, a file that vanished): one line, no traceback.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

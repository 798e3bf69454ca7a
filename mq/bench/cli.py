"""mq-bench: load a RocketMQ 4.x cluster with this project's client and report what it measured.

    mq-bench producer -n 127.0.0.1:9876 -t BenchTopic -w 64 -s 128 -d 10
    NAMESRV_ADDR=127.0.0.1:9876 mq-bench consumer -t BenchTopic -g BenchGroup -d 10

A line every second (TPS, RT average, p50, p99, max, failures), rewritten in place on a terminal, and a
summary at the end; ``--json`` prints only the summary, as one JSON object. Producer RT is send to
acknowledgement; consumer RT is the time from the producer's born timestamp to the listener (clocks of both
hosts must agree). Sends still unanswered at the deadline are not counted, but their number is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from twisted.internet import defer, task

from mq.acl.signing import ENV_ACCESS_KEY, ENV_SECRET_KEY, Credentials
from mq.bench.stats import Reporter, Stats, format_line
from mq.client import ConsumeFromWhere, MessageModel, Producer, PushConsumer, make_message
from mq.client.simple import SimpleClient
from mq.common.cli import version_text


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namesrv", default=os.environ.get("NAMESRV_ADDR") or None,
                   help="NameServer address(es), host:port;host:port (default: $NAMESRV_ADDR)")
    p.add_argument("-t", "--topic", default="BenchmarkTest", help="topic (default BenchmarkTest)")
    p.add_argument("-d", "--duration", type=float, default=0.0, help="seconds to run (0: until --count)")
    p.add_argument("-c", "--count", type=int, default=0, help="messages to send/receive (0: until --duration)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between report lines (default 1)")
    p.add_argument("--json", action="store_true", help="print only the final summary, as JSON")
    p.add_argument("--access-key", default=None, help=f"ACL account to sign with (default: ${ENV_ACCESS_KEY})")
    p.add_argument("--secret-key", default=None, help=f"its secret key (default: ${ENV_SECRET_KEY})")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mq-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_text("mq-bench"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("producer", help="send messages as fast as the window allows")
    _common(p)
    p.add_argument("-g", "--group", default="mq_bench_producer", help="producer group")
    p.add_argument("-w", "--concurrency", type=int, default=64, help="sends in flight (default 64)")
    p.add_argument("-s", "--size", type=int, default=128, help="message body bytes (default 128)")
    p.add_argument("-b", "--batch", type=int, default=1, help="messages per send (>1: batch sends)")
    p.add_argument("-k", "--keys", action="store_true", help="give each message a key")
    p.add_argument("--tags", default=None, help="tag of every message")
    p.add_argument("--delay-level", type=int, default=0, help="delay level 1-18 (0: none)")
    p.add_argument("--mode", choices=("sync", "async", "oneway"), default="async",
                   help="sync: each of the concurrency workers waits for its answer; async: callbacks keep "
                        "the window full; oneway: no answers (no RT)")
    p.add_argument("--fault-latency", action="store_true", help="enable latency-fault avoidance")
    p.add_argument("--java-load", action="store_true",
                   help="load the topic's first broker as Java 4.9's benchmark producer does: ONE connection, "
                        "-w sends in flight, SEND_MESSAGE_V2 (or SEND_BATCH_MESSAGE with -b) frames pre-encoded "
                        "as the Java client writes them; measures -d seconds after --warmup")
    p.add_argument("--warmup", type=float, default=2.0, help="--java-load: seconds before the window (default 2)")
    p.add_argument("--broker-pid", type=int, default=None,
                   help="--java-load: also report this local broker process's CPU µs per message")
    c = sub.add_parser("consumer", help="consume with a push consumer")
    _common(c)
    c.add_argument("-g", "--group", default="mq_bench_consumer", help="consumer group")
    c.add_argument("--expression", default="*", help="tag expression (default *)")
    c.add_argument("--broadcast", action="store_true", help="broadcasting instead of clustering")
    c.add_argument("--from-first", action="store_true", help="a new group starts at the first offset")
    args = parser.parse_args(argv)
    if not args.namesrv:
        parser.error("give the NameServers with -n host:port or NAMESRV_ADDR")
    if args.duration <= 0 and args.count <= 0:
        args.duration = 10.0
    try:
        args.credentials = Credentials.from_options(args.access_key, args.secret_key)
    except ValueError as e:
        parser.error(f"{e} (--access-key/--secret-key or ${ENV_ACCESS_KEY}/${ENV_SECRET_KEY})")
    return args


class Run:
    def __init__(self, reactor, args, reporter: Optional[Reporter] = None) -> None:
        self.reactor = reactor
        self.args = args
        self.stats = Stats()
        self.done = defer.Deferred()
        self.stopping = False
        self.ticker = task.LoopingCall(self.tick)
        self.ticker.clock = reactor
        self.reporter = reporter or Reporter()
        #: Messages sent and not yet answered; how many were at the deadline goes in the summary.
        self.in_flight = 0

    def start_reporting(self) -> None:
        self.stats = Stats()
        self.ticker.start(self.args.interval, now=False)
        if self.args.duration > 0:
            self.reactor.callLater(self.args.duration, self.finish)

    def tick(self) -> None:
        line = self.stats.interval()
        if not self.args.json:
            self.reporter.interval(format_line(line, f"[{line['elapsed_s']:6.1f}s] "))

    def count_reached(self) -> bool:
        return self.args.count > 0 and self.stats.ok + self.stats.failures >= self.args.count

    def finish(self) -> None:
        if not self.stopping:
            self.stopping = True
            if self.ticker.running:
                self.ticker.stop()
            summary = self.stats.summary()
            summary["in_flight"] = self.in_flight
            self.done.callback(summary)

    def warn(self, text: str) -> None:
        """One line on stderr (the live view, on stdout, is ended first)."""
        self.reporter.end_live()
        sys.stderr.write(f"mq-bench: {text}\n")
        sys.stderr.flush()


@defer.inlineCallbacks
def has_route(reactor, args):
    """Whether any of the NameServers knows the topic (None: none of them answered)."""
    client = SimpleClient(reactor, credentials=args.credentials)
    answered = False
    try:
        for addr in (a.strip() for a in args.namesrv.split(";") if a.strip()):
            try:
                route = yield client.route(addr, args.topic)
            except Exception:
                continue
            answered = True
            if route is not None and route.queue_datas:
                return True
    finally:
        yield client.close()
    return False if answered else None


NO_ROUTE = {
    "producer": "topic {topic} has no route on the NameServers: sends go through TBW102 and only a broker "
                "with autoCreateTopicEnable=true creates it (mqadmin updateTopic -t {topic} creates it anywhere)",
    "consumer": "topic {topic} has no route on the NameServers: nothing arrives until it is created "
                "(mqadmin updateTopic -t {topic}) and a producer sends",
    "unreachable": "no NameServer of {namesrv} answered a route query",
}


@defer.inlineCallbacks
def check_route(reactor, args, run: Run):
    """Warn, rather than print TPS 0 for the whole run, when the topic has no route."""
    known = yield has_route(reactor, args)
    if known is None:
        run.warn(NO_ROUTE["unreachable"].format(namesrv=args.namesrv))
    elif not known:
        run.warn(NO_ROUTE[args.command].format(topic=args.topic))
    return known


@defer.inlineCallbacks
def run_producer(reactor, args):
    producer = Producer(args.group, args.namesrv, send_latency_fault_enable=args.fault_latency, reactor=reactor,
                        credentials=args.credentials)
    producer.start()
    body = b"x" * args.size
    run = Run(reactor, args)
    yield check_route(reactor, args, run)
    counter = [0]

    def message():
        counter[0] += 1
        return make_message(args.topic, body, tags=args.tags, keys=f"k{counter[0]}" if args.keys else None,
                            delay_level=args.delay_level)

    def one() -> defer.Deferred:
        run.in_flight += args.batch

        def answered(result):
            run.in_flight -= args.batch
            return result

        if args.batch > 1:
            d = producer.send_batch([message() for _ in range(args.batch)])
        else:
            d = producer.send(message())
        return d.addBoth(answered)

    try:
        yield producer.send(message())  # routes and connections before the clock starts
    except Exception as e:
        yield producer.shutdown()
        raise SystemExit(f"mq-bench: the first send to {args.topic} failed: {e}") from None
    run.start_reporting()
    clock = time.perf_counter

    def more() -> bool:
        return not run.stopping and not run.count_reached()

    if args.mode == "oneway":
        @defer.inlineCallbacks
        def oneway_loop():
            while more():
                for _ in range(args.concurrency):
                    yield producer.send_oneway(message())
                    run.stats.record(None)
                yield task.deferLater(reactor, 0, lambda: None)  # let the reactor write

        yield oneway_loop()
    elif args.mode == "sync":
        @defer.inlineCallbacks
        def worker():
            while more():
                t0 = clock()
                try:
                    yield one()
                    run.stats.record((clock() - t0) * 1000.0, args.batch)
                except Exception:
                    run.stats.fail(args.batch)

        yield defer.DeferredList([worker() for _ in range(args.concurrency)])
    else:
        finished = defer.Deferred()
        inflight = [0]

        def fire() -> None:
            t0 = clock()
            inflight[0] += 1

            def ok(_):
                run.stats.record((clock() - t0) * 1000.0, args.batch)

            def bad(_):
                run.stats.fail(args.batch)

            def next_one(_):
                inflight[0] -= 1
                if more():
                    fire()
                elif inflight[0] == 0 and not finished.called:
                    finished.callback(None)

            one().addCallbacks(ok, bad).addBoth(next_one)

        for _ in range(args.concurrency):
            fire()
        yield finished
    run.finish()
    summary = yield run.done
    summary.update({"role": "producer", "mode": args.mode, "size": args.size, "batch": args.batch,
                    "concurrency": args.concurrency})
    yield producer.shutdown()
    return summary


@defer.inlineCallbacks
def run_consumer(reactor, args):
    run = Run(reactor, args)
    known = yield check_route(reactor, args, run)
    model = MessageModel.BROADCASTING if args.broadcast else MessageModel.CLUSTERING
    cfw = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET if args.from_first else ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
    consumer = PushConsumer(args.group, args.namesrv, message_model=model, consume_from_where=cfw,
                            consume_batch_size=32, reactor=reactor, credentials=args.credentials)
    consumer.subscribe(args.topic, args.expression)

    def listener(msgs, context):
        now = time.time() * 1000.0
        for m in msgs:
            run.stats.record(max(0.0, now - m.born_timestamp))
        if run.count_reached():
            reactor.callLater(0, run.finish)

    consumer.register_message_listener(listener)
    run.start_reporting()
    yield consumer.start()
    summary = yield run.done
    summary.update({"role": "consumer"})
    if not summary["messages"] and not known:
        run.warn(f"no message received: {NO_ROUTE['consumer'].format(topic=args.topic)}")
    yield consumer.shutdown()
    return summary


def java_load(args) -> dict:
    """``--java-load``: the topic's route from the NameServer, then ``mq.bench.java_load`` on one broker."""
    from mq.bench.java_load import connect, read_frame, run_load
    from mq.client.simple import parse_route, route_request
    from mq.remoting.serialization import decode_command, encode_command

    route = None
    for addr in args.namesrv.split(";"):
        with connect(addr) as sock:
            sock.sendall(encode_command(route_request(args.topic)))
            route = parse_route(decode_command(read_frame(sock)))
        if route is not None:
            break
    if route is None or not route.queue_datas:
        raise SystemExit(f"mq-bench: no route for topic {args.topic}")
    queue_data = route.queue_datas[0]
    broker = next(b for b in route.broker_datas if b.broker_name == queue_data.broker_name)
    result = run_load(broker.broker_addrs[0], args.topic, args.concurrency, args.size, args.duration or 10.0,
                      args.warmup, args.batch, queue_data.write_queue_nums, args.broker_pid)
    result.update({"role": "producer", "mode": "java-load", "broker": broker.broker_addrs[0],
                   "failures": result["errors"], "cpu_seconds": None})
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == "producer" and args.java_load:
        result = java_load(args)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"Summary: TPS {result['tps']:,.0f} | RT avg {result['rt_avg_ms']:.2f} ms p99 "
                  f"{result['rt_p99_ms']:.2f} max {result['rt_max_ms']:.2f} | failures {result['errors']} | "
                  f"{result['messages']:,} messages in {result['seconds']:.1f} s, generator CPU "
                  f"{result['generator_cpu_us_per_msg']} µs per message"
                  + (f", broker CPU {result['broker_cpu_us_per_msg']} µs per message"
                     if "broker_cpu_us_per_msg" in result else ""))
        return 0
    result = {}

    def go(reactor):
        d = run_producer(reactor, args) if args.command == "producer" else run_consumer(reactor, args)
        return d.addCallback(result.update)

    try:
        task.react(lambda reactor: go(reactor))
    except SystemExit as e:
        if e.code not in (0, None):
            return int(e.code)
    if args.json:
        print(json.dumps(result))
    else:
        reporter = Reporter()
        reporter.line(format_line(result, "Summary: "))
        in_flight = result.get("in_flight")
        reporter.line(f"Summary: {result['messages']:,} messages in {result['seconds']:.1f} s, "
                      f"{result['cpu_seconds']:.1f} CPU s ({result['messages_per_cpu_second']:,.0f} msg per CPU "
                      f"second)" + (f"; {in_flight:,} sent and unanswered at the deadline, not counted"
                                    if in_flight else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

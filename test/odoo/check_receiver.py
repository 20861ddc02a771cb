#!/usr/bin/python3
"""check_receiver.py: checks what test/receiver.py logged (one JSON line per
request, signature verified by the receiver) for the Odoo tier.

  check_receiver.py LOG CHANNEL.json...
      the sale orders the channels confirmed (CHANNEL.json: {"channel",
      "confirmed": [ids], "unconfirmed": [ids]}) each reached the receiver as
      exactly one sale.order.confirmed request, signature valid, answered 200;
      no other order (the quotations left as such or cancelled) did.
  check_receiver.py --all LOG
      every request of the run carried a valid signature, and no event
      (webhook-id) was delivered twice.
Prints "ok - ..." / "not ok - ..." and "#" details.  Standard library only.
"""
import collections
import json
import sys


def read_log(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def report(ok, name, details):
    print(("ok" if ok else "not ok") + " - " + name)
    for d in details[:30]:
        print("#   " + d)


def channels(log_path, files):
    reqs = read_log(log_path)
    confirmed, unconfirmed, names = {}, set(), []
    for path in files:
        with open(path) as f:
            c = json.load(f)
        names.append(c["channel"])
        for sid in c["confirmed"]:
            confirmed[sid] = c["channel"]
        unconfirmed.update(c["unconfirmed"])
    got = collections.defaultdict(list)
    for r in reqs:
        if r.get("type") == "sale.order.confirmed":
            got[r.get("record")].append(r)
    details = []
    for sid, channel in sorted(confirmed.items()):
        rs = got.get(sid, [])
        if len(rs) != 1:
            details.append("order %d (%s): %d sale.order.confirmed requests" % (sid, channel, len(rs)))
        for r in rs:
            if not r.get("sig_ok") or r.get("status") != 200:
                details.append("order %d: webhook-id %s sig_ok=%s status=%s" % (sid, r.get("id"), r.get("sig_ok"),
                                                                              r.get("status")))
    for sid in sorted(set(got) - set(confirmed)):
        what = "a quotation never confirmed" if sid in unconfirmed else "not confirmed by a channel"
        details.append("order %s (%s) was announced as confirmed %d time(s)" % (sid, what, len(got[sid])))
    ok = bool(confirmed) and not details
    report(ok, "flows a: %d orders confirmed by %d channels (%s) reached the receiver exactly once each, "
               "signatures valid; %d quotations never confirmed did not"
           % (len(confirmed), len(files), ", ".join(names), len(unconfirmed)),
           details + ["receiver log: %d requests, %d sale.order.confirmed" % (
               len(reqs), sum(len(v) for v in got.values()))])


def everything(log_path):
    reqs = read_log(log_path)
    by_id = collections.Counter(r.get("id") for r in reqs if r.get("status") == 200)
    bad_sig = [r for r in reqs if not r.get("sig_ok")]
    twice = [i for i, n in by_id.items() if n > 1]
    types = collections.Counter(r.get("type") for r in reqs)
    details = ["request %s (%s): signature not valid" % (r.get("id"), r.get("type")) for r in bad_sig]
    details += ["webhook-id %s delivered %d times" % (i, by_id[i]) for i in twice]
    report(reqs and not bad_sig and not twice,
           "flows: all %d webhooks of the run were signed validly and none was delivered twice" % len(reqs),
           details + ["events by type: " + ", ".join("%s %d" % kv for kv in sorted(types.items(), key=str))])


if __name__ == "__main__":
    if sys.argv[1] == "--all":
        everything(sys.argv[2])
    else:
        channels(sys.argv[1], sys.argv[2:])

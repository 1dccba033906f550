#!/usr/bin/python3
"""dkim_verify.py MESSAGE RECORDS N - verifies every DKIM-Signature of
MESSAGE with dkimpy (someone else's code), the keys taken from RECORDS
(the lines `relayctl dkim` prints) instead of DNS; exits 0 when there are
exactly N signatures and every one verifies. Used by test_dlv_dkim."""
import re
import sys

import dkim

msg = open(sys.argv[1], "rb").read()
records = {}
for line in open(sys.argv[2]):
    m = re.match(r'(\S+)\.? IN TXT "(.*)"$', line.strip())
    if m:
        records[m.group(1).rstrip(".").lower() + "."] = m.group(2).encode()
want = int(sys.argv[3])


def dnsfunc(name, timeout=5):
    key = name.decode() if isinstance(name, bytes) else name
    return records.get(key.lower().rstrip(".") + ".")


d = dkim.DKIM(msg)
n = len(re.findall(rb"(?im)^DKIM-Signature:", msg.split(b"\r\n\r\n", 1)[0]))
ok = [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]
print("signatures: %d, verified: %s" % (n, ok))
sys.exit(0 if n == want and all(ok) else 1)

# Captures the HEP3 packets of rtpengine-rtcp-hep.hex: runs Debian's
# rtpengine-daemon on loopback with --homer, sets up one call over its NG
# port, sends RTP and RTCP (SR from A, RR and SR from B) through it and
# writes every HEP packet rtpengine sends as hep-N.bin. Only loopback
# addresses are used. Run: python3 capture-rtpengine.py (needs rtpengine).
import socket, struct, subprocess, time, os, sys, random

def benc(x):
    if isinstance(x, int): return b"i%de" % x
    if isinstance(x, str): x = x.encode()
    if isinstance(x, bytes): return b"%d:%s" % (len(x), x)
    if isinstance(x, list): return b"l" + b"".join(benc(i) for i in x) + b"e"
    if isinstance(x, dict): return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"

def bdec(b, i=0):
    c = b[i:i+1]
    if c == b"i":
        j = b.index(b"e", i); return int(b[i+1:j]), j+1
    if c == b"l":
        i += 1; out = []
        while b[i:i+1] != b"e":
            v, i = bdec(b, i); out.append(v)
        return out, i+1
    if c == b"d":
        i += 1; out = {}
        while b[i:i+1] != b"e":
            k, i = bdec(b, i); v, i = bdec(b, i); out[k.decode()] = v
        return out, i+1
    j = b.index(b":", i); n = int(b[i:j]); return b[j+1:j+1+n], j+1+n

NG = ("127.0.0.1", 22300)
HEP = ("127.0.0.1", 22399)
hep = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); hep.bind(HEP); hep.settimeout(0.2)
log = open("rtpengine.log", "w")
p = subprocess.Popen(["rtpengine", "--foreground", "--log-stderr", "--table=-1", "--interface=127.0.0.1",
    "--listen-ng=%s:%d" % NG, "--port-min=22310", "--port-max=22390", "--log-level=6",
    "--homer=%s:%d" % HEP, "--homer-protocol=udp", "--homer-id=2001"], stdout=log, stderr=log)
ng = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ng.settimeout(0.5)
def cmd(d):
    for _ in range(40):
        ck = b"%x " % random.getrandbits(32)
        ng.sendto(ck + benc(d), NG)
        try:
            r, _ = ng.recvfrom(65535)
            return bdec(r[len(ck):])[0]
        except socket.timeout:
            time.sleep(0.25)
    raise SystemExit("no NG answer")
try:
    print(cmd({"command": "ping"}))
    callid = "media-sample-1@127.0.0.1"
    sdpA = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 22400 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    sdpB = sdpA.replace("22400", "22410")
    off = cmd({"command": "offer", "call-id": callid, "from-tag": "fa", "sdp": sdpA})
    ans = cmd({"command": "answer", "call-id": callid, "from-tag": "fa", "to-tag": "tb", "sdp": sdpB})
    def port(sdp):
        for l in sdp.decode().split("\r\n"):
            if l.startswith("m=audio"): return int(l.split()[1])
    pB = port(off["sdp"]); pA = port(ans["sdp"])
    print("A sends to", pA, "B sends to", pB)
    sa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sa.bind(("127.0.0.1", 22400))
    sac = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sac.bind(("127.0.0.1", 22401))
    sb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sb.bind(("127.0.0.1", 22410))
    sbc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sbc.bind(("127.0.0.1", 22411))
    ssrcA, ssrcB = 0x1a2b3c4d, 0x5e6f7081
    for s in (sb, sbc, sa, sac): s.settimeout(0.05)
    def ntp(t):
        sec = int(t) + 2208988800; frac = int((t % 1) * (1 << 32)); return sec, frac
    sent = 0
    for i in range(150):
        for s, dst, ssrc in ((sa, pA, ssrcA), (sb, pB, ssrcB)):
            if s is sa and i % 20 == 7: continue  # A loses 5 % on the way
            s.sendto(struct.pack("!BBHII", 0x80, 0, i, i * 160, ssrc) + b"\xff" * 160, ("127.0.0.1", dst))
        sent += 1
        time.sleep(0.02)
        if i in (50, 120):
            t = time.time(); sec, frac = ntp(t)
            sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrcA, sec, frac, i * 160, i + 1, (i + 1) * 160)
            sac.sendto(sr, ("127.0.0.1", pA + 1))
            lsr = ((sec & 0xffff) << 16) | (frac >> 16)
            time.sleep(0.03)
            dlsr = int(0.03 * 65536)
            lost = (i // 20) + 1
            frac_lost = 13
            jitter = 37
            rr = struct.pack("!BBHI", 0x81, 201, 7, ssrcB) + struct.pack("!IIIIII", ssrcA, (frac_lost << 24) | lost, i, jitter, lsr, dlsr)
            sbc.sendto(rr, ("127.0.0.1", pB + 1))
            # B also sends its own SR with a report block about A
            sec2, frac2 = ntp(time.time())
            sr2 = struct.pack("!BBHIIIIII", 0x81, 200, 12, ssrcB, sec2, frac2, i * 160, i + 1, (i + 1) * 160) + struct.pack("!IIIIII", ssrcA, (frac_lost << 24) | lost, i, jitter, lsr, dlsr)
            sbc.sendto(sr2, ("127.0.0.1", pB + 1))
        for s in (sa, sac, sb, sbc):
            try:
                while True: s.recvfrom(2048)
            except socket.timeout: pass
    end = time.time() + 2
    n = 0
    while time.time() < end:
        try:
            d, _ = hep.recvfrom(65535)
        except socket.timeout:
            continue
        n += 1
        open("hep-%d.bin" % n, "wb").write(d)
    print("hep packets", n)
    cmd({"command": "delete", "call-id": callid, "from-tag": "fa"})
finally:
    p.terminate(); p.wait()

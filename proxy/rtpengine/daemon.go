package rtpengine

import "strconv"

// DaemonBinary is Debian's rtpengine-daemon, looked up in PATH.
const DaemonBinary = "rtpengine"

// Daemon is the command line of an rtpengine-daemon on one address, as
// the demo and the system tests run it: in the foreground, userspace
// forwarding only (no kernel module, no iptables: it runs unprivileged),
// logging to stderr, without Debian's /etc/rtpengine/rtpengine.conf
// (whose HTTP listener on 2225 a second engine on the machine would
// collide on, and whose recording and timeout settings are a system
// engine's, not ours).
type Daemon struct {
	Interface        string // the media address
	NG, CLI          string // control addresses; CLI set so that a second engine does not collide on its default
	PortMin, PortMax int    // the media ports
	// Homer, when set, is where the engine sends the RTCP it relays as HEP
	// (type 5, over UDP), with capture id HomerID.
	Homer   string
	HomerID int
}

// Args are the daemon's arguments.
func (d Daemon) Args() []string {
	args := []string{"--config-file=none", "--foreground", "--log-stderr", "--table=-1", "--interface=" + d.Interface, "--listen-ng=" + d.NG,
		"--listen-cli=" + d.CLI, "--port-min=" + strconv.Itoa(d.PortMin), "--port-max=" + strconv.Itoa(d.PortMax), "--log-level=4"}
	if d.Homer != "" {
		args = append(args, "--homer="+d.Homer, "--homer-protocol=udp", "--homer-id="+strconv.Itoa(d.HomerID))
	}
	return args
}

package record

// Event names (LogRecord.EventName).
const (
	EventSIPMessage = "sip.message" // a SIP message, body = the raw message
	EventCDR        = "sip.cdr"     // a call detail record, body = SIPhon's JSON
	EventHEPPrefix  = "hep."        // non-SIP HEP: hep.rtcp, hep.log, hep.dns, hep.qos, hep.<type>
)

// Resource attributes.
const (
	AttrServiceName       = "service.name"
	AttrServiceInstanceID = "service.instance.id"
	AttrHostName          = "host.name"
)

// DefaultServiceName is service.name for records from SIPhon nodes.
const DefaultServiceName = "siphon"

// Network attributes (OpenTelemetry semantic conventions).
const (
	AttrNetworkTransport   = "network.transport" // udp, tcp, sctp
	AttrNetworkType        = "network.type"      // ipv4, ipv6
	AttrSourceAddress      = "source.address"
	AttrSourcePort         = "source.port"
	AttrDestinationAddress = "destination.address"
	AttrDestinationPort    = "destination.port"
)

// HEP metadata. Every chunk of a HEP packet except the auth key (a secret
// of the hop, never forwarded) has an attribute, so the homer exporter can
// rebuild the packet.
const (
	AttrHEPVersion           = "hep.version"
	AttrHEPProtocolType      = "hep.protocol_type"
	AttrHEPCaptureID         = "hep.capture_id"
	AttrHEPNodeName          = "hep.node_name"
	AttrHEPCorrelationID     = "hep.correlation_id"
	AttrHEPVLAN              = "hep.vlan"
	AttrHEPIPProtocol        = "hep.ip_protocol" // only when not udp/tcp/sctp
	AttrHEPIPFamily          = "hep.ip_family"   // only when it disagrees with the addresses
	AttrHEPKeepAlive         = "hep.keep_alive"
	AttrHEPSrcMAC            = "hep.src_mac"
	AttrHEPDstMAC            = "hep.dst_mac"
	AttrHEPEtherType         = "hep.ether_type"
	AttrHEPTCPFlags          = "hep.tcp_flags"
	AttrHEPIPTOS             = "hep.ip_tos"
	AttrHEPMOS               = "hep.mos"
	AttrHEPRFactor           = "hep.r_factor"
	AttrHEPJitter            = "hep.jitter"
	AttrHEPGeoLocation       = "hep.geo_location"
	AttrHEPTransactionType   = "hep.transaction_type"
	AttrHEPPayloadJSONKeys   = "hep.payload_json_keys"
	AttrHEPTagsValues        = "hep.tags_values"
	AttrHEPTagType           = "hep.tag_type"
	AttrHEPPayloadCompressed = "hep.payload_compressed"
	AttrHEPExtraChunks       = "hep.extra_chunks" // bytes: HEP3 wire encoding of vendor/unknown chunks
	AttrHEPNoTimestamp       = "hep.no_timestamp" // the sender sent no time (HEP v1); Timestamp is the receive time
)

// SIP summary of a sip.message record, named as the OpenSIPS
// opentelemetry module and our own metric labels name them.
const (
	// AttrSIPRequestMethod is the request line's method on a request and
	// the CSeq method on a response (the request it answers), so that one
	// attribute selects every message of a method.
	AttrSIPRequestMethod = "sip.request.method"
	AttrSIPRequestURI    = "sip.request.uri"
	// AttrSIPResponseStatusCode is set on responses only: its presence is
	// what tells a response from a request.
	AttrSIPResponseStatusCode = "sip.response.status_code"
	AttrSIPCallID             = "sip.call_id"
	// AttrSIPCorrelationID is the call's correlation key, written by the
	// sip_correlation processor on sip.message and sip.cdr records: the
	// Call-ID of the call's first leg, joining a B2BUA's legs
	// (docs/call-traces.md).
	AttrSIPCorrelationID = "sip.correlation_id"
	AttrSIPCSeqMethod    = "sip.cseq.method"
	AttrSIPCSeqNumber    = "sip.cseq.number"
	AttrSIPFromTag       = "sip.from.tag"
	AttrSIPToTag         = "sip.to.tag"
	AttrSIPViaBranch     = "sip.via.branch"
	// AttrUserAgentOriginal is the User-Agent header, else Server
	// (OpenTelemetry's user_agent.original).
	AttrUserAgentOriginal = "user_agent.original"
)

// AddedDownstream is how many attributes the shipped pipelines add to
// every sip.message and sip.cdr record after the receiver built it
// (AttrSIPCorrelationID, by sip_correlation): the builders leave room for
// them, so that the record's attribute array is not grown, to twice its
// size, on the way (measured: sipcall's path 1.2x slower without the room).
const AddedDownstream = 1

// CDR fields of a sip.cdr record that have no sip.message counterpart.
// (call_id, ruri, method, response_code, source/destination_ip and
// user_agent map to the names above; cdrrecord has the whole mapping.)
const (
	AttrSIPFromURI             = "sip.from.uri"
	AttrSIPToURI               = "sip.to.uri"
	AttrSIPReason              = "sip.reason" // RFC 3326 Reason header value
	AttrCDRTimestampStart      = "cdr.timestamp_start"
	AttrCDRTimestampAnswer     = "cdr.timestamp_answer"
	AttrCDRTimestampEnd        = "cdr.timestamp_end"
	AttrCDRDurationSecs        = "cdr.duration_secs"
	AttrCDRTransport           = "cdr.transport" // SIPhon's value: udp, tcp, tls, ws, wss
	AttrCDRAuthUser            = "cdr.auth_user"
	AttrCDRDisconnectInitiator = "cdr.disconnect_initiator"
	AttrCDRRfSessionID         = "cdr.rf_session_id"
	AttrCDRRfResultCode        = "cdr.rf_result_code"
	AttrCDRRegEvent            = "cdr.reg_event"
	// AttrCDRExtraPrefix starts the attribute of each script-added key.
	AttrCDRExtraPrefix = "cdr.extra."
)

// Span attributes of the sipcall connector's call traces
// (docs/call-traces.md) that records do not carry.
const (
	// AttrSIPCallResult is the call's result class (calltrace.Result), as
	// sipkpi's label of the same name.
	AttrSIPCallResult              = "sip.call.result"
	AttrSIPCallPostDialDelay       = "sip.call.post_dial_delay"  // s: initial INVITE to its first 18x or final response
	AttrSIPCallSetupDuration       = "sip.call.setup_duration"   // s: initial INVITE to the 2xx, or to the final response
	AttrSIPCallRingingDuration     = "sip.call.ringing_duration" // s: first 18x to the 2xx or final response
	AttrSIPCallDuration            = "sip.call.duration"         // s: 2xx to the first BYE
	AttrSIPCallDisconnectInitiator = "sip.call.disconnect_initiator"
	// AttrSIPCallPartial marks a call whose initial INVITE was not seen (a
	// restart or an eviction in the middle of it).
	AttrSIPCallPartial = "sip.call.partial"
	// AttrSIPScanner marks (true) a call, or a transaction, whose initial
	// request came from a SIP scanner's User-Agent (internal/sipscanner):
	// tail sampling keeps those calls (distro/call-traces.yaml).
	AttrSIPScanner = "sip.scanner"
	// AttrSIPMessageRetransmission marks a span event of a message already
	// seen on that hop.
	AttrSIPMessageRetransmission = "sip.message.retransmission"
	AttrSIPMessageBody           = "sip.message.body"     // the raw message, on a span event (include_body)
	AttrNetworkIODirection       = "network.io.direction" // receive, transmit: as the capturing node saw the message
)

// Media quality (internal/mediaq): the figures of a hep.rtcp record's RTCP
// report and of HEP chunk 0x20, in SI units, as the hep receiver writes
// them. A report of several streams (RTCP report blocks) gives the first
// stream's figures; media.streams says how many it had.
const (
	// AttrMediaSource is the report the figures come from: rtcp (HEP type
	// 5 JSON, report blocks or an RTCP-XR VoIP metrics block), hep_mos
	// (HEP chunk 0x20 alone).
	AttrMediaSource  = "media.source"
	AttrMediaStreams = "media.streams" // streams in the report
	// AttrMediaSSRC is the SSRC of the stream reported on;
	// AttrMediaReporterSSRC the SSRC of its reporter.
	AttrMediaSSRC            = "media.ssrc"
	AttrMediaReporterSSRC    = "media.reporter.ssrc"
	AttrMediaPacketLossRatio = "media.packet_loss.ratio" // 0..1
	AttrMediaPacketsLost     = "media.packets.lost"      // cumulative (negative: duplicates)
	AttrMediaJitter          = "media.jitter"            // s
	AttrMediaRTT             = "media.rtt"               // s: from LSR/DLSR and the capture time, or given
	// AttrMediaMOS is the conversational MOS, 1..5: HEP chunk 0x20 when
	// the packet has one, else the report's, else the E-model's estimate
	// from the report's loss and delays (AttrMediaEstimated).
	AttrMediaMOS          = "media.mos"
	AttrMediaRFactor      = "media.r_factor"      // E-model R, 0..100 (120 for wideband)
	AttrMediaEstimated    = "media.estimated"     // true: media.mos and media.r_factor are the E-model's
	AttrMediaQualityClass = "media.quality.class" // good, fair, poor, bad (mediaq.ClassOf)
	// AttrMediaCodec is a stream's codec (callmedia.CodecLabel);
	// AttrMediaDirection the way its media travelled (callmedia.Direction).
	AttrMediaCodec     = "media.codec"
	AttrMediaDirection = "media.direction"
)

// EventMediaReport is the span event of one media report on a call's root
// span (the sipcall connector).
const EventMediaReport = "media.report"

// AttrMediaOf is a media attribute of one direction of a call, as the call's
// root span carries its streams' figures: AttrMediaOf("caller_to_callee",
// AttrMediaMOS) is "media.caller_to_callee.mos".
func AttrMediaOf(direction, attr string) string {
	return "media." + direction + attr[len("media"):]
}

// Package logmodel is the project's data model: one OTel log record per
// event (a SIP message, a CDR, a non-SIP HEP packet). It names every event
// and attribute once, and maps HEP packets to log records and back without
// loss. The README's attribute table documents the same names.
package logmodel

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

// SIP summary of a sip.message record.
const (
	AttrSIPMethod     = "sip.method"
	AttrSIPRequestURI = "sip.request.uri"
	AttrSIPStatusCode = "sip.status_code"
	AttrSIPCallID     = "sip.call_id"
	AttrSIPCSeqMethod = "sip.cseq.method"
	AttrSIPCSeqNumber = "sip.cseq.number"
	AttrSIPFromTag    = "sip.from.tag"
	AttrSIPToTag      = "sip.to.tag"
	AttrSIPViaBranch  = "sip.via.branch"
	AttrSIPUserAgent  = "sip.user_agent"
)

// CDR fields of a sip.cdr record that have no sip.message counterpart.
// (call_id, ruri, method, response_code, source/destination_ip and
// user_agent map to the sip.* and network names above.)
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

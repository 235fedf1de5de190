// Package record is the project's data model: one OpenTelemetry log record
// per event, whatever its source. It names every event and attribute once
// and walks the records of a batch; its subpackages convert:
//
//   - heprecord: a HEP packet to a record and back, without loss (a
//     sip.message for SIP, hep.<type> for the rest);
//   - cdrrecord: SIPhon's CDR to a sip.cdr record and back (JSON, CSV);
//   - recordjson: any record to the one-line JSON our exporters write.
//
// What each event carries:
//
//   - sip.message: body = the SIP message, byte-exact; Timestamp = capture
//     time; network.*, source.*, destination.*, hep.* from the HEP chunks;
//     the SIP summary (sip.request.method, sip.response.status_code,
//     sip.call_id, sip.cseq.*, sip.from.tag, sip.to.tag, sip.via.branch,
//     user_agent.original).
//   - sip.cdr: body = SIPhon's JSON object, unchanged; Timestamp = the
//     record's "timestamp"; each documented key as an attribute (the table
//     is in cdrrecord), script-added keys as cdr.extra.<key>.
//   - hep.<type> (hep.rtcp, hep.log, ...): body = the HEP payload; the same
//     network and hep.* attributes as sip.message. A hep.rtcp record, and
//     any record whose packet had a MOS chunk (0x20), also has the media.*
//     figures of internal/mediaq (loss, jitter, round trip, MOS, R).
//
// The README's attribute table documents the same names.
package record

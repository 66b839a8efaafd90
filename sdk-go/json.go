package rapidmq

import (
	"encoding/json"
	"fmt"
)

// ContentTypeHeader names the media type of a message's value, when its producer says;
// [JSONMessage] sets it to [JSONContentType]. The broker never reads it.
const ContentTypeHeader = "content-type"

// JSONContentType is the content-type of a value written by [JSONMessage].
const JSONContentType = "application/json"

// JSONMessage returns a message whose Value is v encoded with encoding/json, carrying the
// header content-type: application/json; set its Key and other fields as usual. A value
// encoding/json cannot encode is an error matching [ErrInvalidArgument] that wraps the
// encoding error. Every SDK's JSON helpers behave alike (docs/sdk-conformance.md, C28).
func JSONMessage(v any) (Message, error) {
	value, err := json.Marshal(v)
	if err != nil {
		return Message{}, invalidArgument("the value cannot be written as JSON", err)
	}
	return Message{
		Value:   value,
		Headers: []Header{{Key: ContentTypeHeader, Value: []byte(JSONContentType)}},
	}, nil
}

// DecodeJSON parses the message's value as JSON into v (as encoding/json.Unmarshal does),
// whether or not the message says content-type: application/json. A value that is not JSON of
// v's type is an error matching [ErrInvalidArgument] that wraps the decoding error. A
// [QueueMessage] has it too.
func (m ReceivedMessage) DecodeJSON(v any) error {
	if err := json.Unmarshal(m.Value, v); err != nil {
		return invalidArgument(fmt.Sprintf("the value at %s/%d/%d is not JSON of type %T", m.Topic, m.Partition, m.Offset, v), err)
	}
	return nil
}

// invalidArgument is an INVALID_ARGUMENT error raised in Go, wrapping its cause.
func invalidArgument(what string, cause error) error {
	return &Error{Code: CodeInvalidArgument, Kind: KindInvalidArgument, Message: what + ": " + cause.Error(), cause: cause}
}

import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { status } from "@grpc/grpc-js";

/**
 * The standard trailer carrying a `google.rpc.Status` with typed details
 * (`grpc-status-details-bin`), as named once in @phoenix/proto.
 */
export { STATUS_DETAILS_KEY } from "@phoenix/proto";

/**
 * A typed error detail (a `google.protobuf.Any`): the protobuf type's full name behind
 * `type.googleapis.com/` and its encoding. Details travel to the client in the standard
 * `grpc-status-details-bin` trailer, e.g. `phoenix.common.v1.ErrorDetail` with the current epoch.
 */
export interface StatusDetail {
  typeUrl: string;
  value: Uint8Array;
}

/** Builds a {@link StatusDetail} from a protobuf full type name and the message's encoding. */
export function statusDetail(typeName: string, value: Uint8Array): StatusDetail {
  return { typeUrl: `type.googleapis.com/${typeName}`, value };
}

/** The canonical upper-case name of a status code, e.g. `RESOURCE_EXHAUSTED` (for logs and metrics). */
export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}

/** A decoded `google.rpc.Status`. */
export interface RichStatus {
  code: status;
  message: string;
  details: StatusDetail[];
}

/** Encodes a `google.rpc.Status` (code = 1, message = 2, repeated google.protobuf.Any details = 3). */
export function encodeRichStatus(value: RichStatus): Uint8Array {
  const writer = new BinaryWriter();
  if (value.code !== 0) writer.tag(1, WireType.Varint).int32(value.code);
  if (value.message !== "") writer.tag(2, WireType.LengthDelimited).string(value.message);
  for (const detail of value.details) {
    writer.tag(3, WireType.LengthDelimited).fork();
    writer.tag(1, WireType.LengthDelimited).string(detail.typeUrl);
    writer.tag(2, WireType.LengthDelimited).bytes(detail.value);
    writer.join();
  }
  return writer.finish();
}

/** Decodes a `google.rpc.Status`; throws on malformed input. */
export function decodeRichStatus(bytes: Uint8Array): RichStatus {
  const reader = new BinaryReader(bytes);
  const result: RichStatus = { code: 0, message: "", details: [] };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) result.code = reader.int32();
    else if (field === 2 && wireType === WireType.LengthDelimited) result.message = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited)
      result.details.push(decodeAny(reader.bytes()));
    else reader.skip(wireType, field);
  }
  return result;
}

function decodeAny(bytes: Uint8Array): StatusDetail {
  const reader = new BinaryReader(bytes);
  const detail: StatusDetail = { typeUrl: "", value: new Uint8Array(0) };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) detail.typeUrl = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) detail.value = plainBytes(reader.bytes());
    else reader.skip(wireType, field);
  }
  return detail;
}

/** A plain Uint8Array view (the reader hands out Buffer slices when decoding a Buffer). */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

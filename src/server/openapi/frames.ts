/**
 * The WebSocket frames of GET /ws as components of the document: `ClientFrame_<type>` and
 * `ServerFrame_<type>` from the schemas of src/realtime/frames.ts, and `ClientFrame` / `ServerFrame`,
 * each a oneOf discriminated by `type`. OpenAPI 3.0 cannot describe a socket's messages, so the /ws
 * operation points at them (see `describeFrames`).
 */
import { clientFrames, serverFrames } from '../../realtime/frames.ts';
import { toOpenApiSchema } from './json-schema.ts';

type Json = Record<string, unknown>;

const EXAMPLES: Record<string, Record<string, unknown>> = {
  ClientFrame_subscribe: { type: 'subscribe', room: '0b5f3c1e-7d2a-4f6b-9c8e-1a2b3c4d5e6f', after: 41 },
  ServerFrame_message: {
    type: 'message',
    room: '0b5f3c1e-7d2a-4f6b-9c8e-1a2b3c4d5e6f',
    message: {
      seq: 42,
      id: '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a',
      clientMsgId: 'c-1736071200000-1',
      author: 'alice',
      text: 'Pizza at noon?',
      createdAt: '2026-01-05T10:00:00.000Z',
    },
  },
};

/** The components of one side: a schema per frame type, and the union of them. */
function side(union: 'ClientFrame' | 'ServerFrame', frames: Record<string, object>, description: string) {
  const schemas: Record<string, Json> = {};
  const mapping: Record<string, string> = {};
  for (const [type, schema] of Object.entries(frames)) {
    const name = `${union}_${type}`;
    const example = EXAMPLES[name];
    schemas[name] = { ...toOpenApiSchema(schema), ...(example ? { example } : {}) };
    mapping[type] = `#/components/schemas/${name}`;
  }
  schemas[union] = {
    description,
    oneOf: Object.values(mapping).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'type', mapping },
  };
  return schemas;
}

/** Every frame schema, for `components.schemas`. */
export function frameSchemas(): Record<string, Json> {
  return {
    ...side('ClientFrame', clientFrames, 'A frame a client sends on /ws (JSON text), by `type`.'),
    ...side('ServerFrame', serverFrames, 'A frame the server sends on /ws (JSON text), by `type`.'),
  };
}

/** What the /ws operation says about its frames (its own description already lists the close codes). */
export const FRAMES_DESCRIPTION =
  "Frames as schemas: every client frame is a `ClientFrame` (components/schemas: one `ClientFrame_<type>` per type) and every server frame a `ServerFrame` (`ServerFrame_<type>`), discriminated by `type`; the operation's `x-websocket-frames` points at both.";

/** The /ws operation's pointers to its frames (a vendor extension: OpenAPI 3.0 has no place for them). */
export const FRAMES_EXTENSION = {
  'x-websocket-frames': {
    client: { $ref: '#/components/schemas/ClientFrame' },
    server: { $ref: '#/components/schemas/ServerFrame' },
  },
};

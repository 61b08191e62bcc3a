import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { type CallTrace, remoteParent, Telemetry } from './telemetry.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

const parentOf = (meta: Record<string, unknown> | undefined) => trace.getSpanContext(remoteParent(meta));

describe('remoteParent: the client trace context from _meta', () => {
  it('reads a W3C traceparent: trace id, parent span id, the sampled flag, remote', () => {
    expect(parentOf({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-01` })).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
    });
    // Only the sampled bit of the flags is kept.
    expect(parentOf({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-02` })?.traceFlags).toBe(0);
    expect(parentOf({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-03` })?.traceFlags).toBe(1);
  });

  it('takes a header with surrounding spaces or upper-case hex as the same context', () => {
    for (const traceparent of [
      `  00-${TRACE_ID}-${SPAN_ID}-01 `,
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID.toUpperCase()}-01`,
    ])
      expect(parentOf({ traceparent })).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
  });

  it('carries a tracestate along; a malformed or oversized one is dropped, the parent kept', () => {
    const traceparent = `00-${TRACE_ID}-${SPAN_ID}-01`;
    expect(parentOf({ traceparent, tracestate: 'vendor=abc,other=x' })?.traceState?.get('vendor')).toBe(
      'abc',
    );
    const long = parentOf({ traceparent, tracestate: `vendor=${'a'.repeat(600)}` });
    expect(long).toMatchObject({ traceId: TRACE_ID });
    expect(long?.traceState).toBeUndefined();
    expect(parentOf({ traceparent, tracestate: 42 })?.traceState).toBeUndefined();
  });

  it('ignores what is not a valid traceparent: no parent, a trace of its own', () => {
    for (const traceparent of [
      undefined,
      42,
      '',
      '00-zz-00',
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-1`,
      `00-${TRACE_ID}x-${SPAN_ID}-01`,
      `00_${TRACE_ID}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `0g-${TRACE_ID}-${SPAN_ID}-01`,
    ])
      expect(remoteParent({ traceparent })).toBe(ROOT_CONTEXT);
    expect(remoteParent(undefined)).toBe(ROOT_CONTEXT);
  });
});

describe('Telemetry: calls in flight at the same time', () => {
  it('each step finds its own call, whatever the order calls start and end in', async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const telemetry = new Telemetry({ tracerProvider });
    const keys = [{}, {}, {}, {}];
    const step = (key: object, name: string) => telemetry.callOf(key)!.stepSync(name, () => undefined);
    const [a, b, c, d] = keys as [object, object, object, object];
    const calls = new Map<object, CallTrace>();
    const start = (key: object, tool: string) => calls.set(key, telemetry.startCall(key, tool, undefined)!);
    const end = (key: object) => {
      telemetry.endCall(key, calls.get(key)!);
      expect(telemetry.callOf(key)).toBeUndefined();
    };
    start(a, 'a');
    start(b, 'b');
    step(a, 'a.1');
    step(b, 'b.1');
    end(a);
    start(c, 'c');
    step(b, 'b.2');
    step(c, 'c.1');
    start(d, 'd');
    end(b);
    step(d, 'd.1');
    step(c, 'c.2');
    end(d);
    end(c);
    expect(keys.map((key) => telemetry.callOf(key))).toEqual([undefined, undefined, undefined, undefined]);

    const spans = exporter.getFinishedSpans();
    const roots = new Map(
      spans.filter((s) => s.name === 'payrouter.paid_call').map((s) => [s.spanContext().spanId, s]),
    );
    const children = spans.filter((s) => s.name !== 'payrouter.paid_call');
    expect(children.map((s) => s.name).sort()).toEqual(['a.1', 'b.1', 'b.2', 'c.1', 'c.2', 'd.1']);
    for (const child of children)
      expect(roots.get(child.parentSpanContext!.spanId)!.attributes['payrouter.tool']).toBe(child.name[0]);
    expect(roots.size).toBe(4);
  });
});

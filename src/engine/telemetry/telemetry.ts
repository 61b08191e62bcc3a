import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createTraceState,
  type Histogram,
  type MeterProvider,
  metrics,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

export interface TelemetryOptions {
  enabled?: boolean | undefined;
  tracerProvider?: object | undefined;
  meterProvider?: object | undefined;
}

const SCOPE = 'payrouter';
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The client's trace context from a request's `_meta.traceparent` / `tracestate` (W3C Trace Context). */
export function remoteParent(meta: Record<string, unknown> | undefined): Context {
  const header = meta?.['traceparent'];
  if (typeof header !== 'string') return ROOT_CONTEXT;
  const match = TRACEPARENT.exec(header.trim().toLowerCase());
  if (!match) return ROOT_CONTEXT;
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return ROOT_CONTEXT;
  const state = meta?.['tracestate'];
  let traceState: ReturnType<typeof createTraceState> | undefined;
  if (typeof state === 'string' && state.length <= 512) {
    try {
      traceState = createTraceState(state);
    } catch {
      traceState = undefined;
    }
  }
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & 1,
    isRemote: true,
    ...(traceState ? { traceState } : {}),
  });
}

/**
 * Spans and metrics through @opentelemetry/api only: without an SDK registered by the application
 * (or given as providers) every call is the API's no-op. Attributes name the tool, provider,
 * amount, currency and outcome; never arguments or secrets. The call span is carried in an
 * AsyncLocalStorage of our own, so child spans nest without any context manager.
 */
export class Telemetry {
  readonly enabled: boolean;
  readonly #tracer: Tracer;
  readonly #calls = new AsyncLocalStorage<Context>();
  readonly #counters = new Map<string, Counter>();
  readonly #histograms = new Map<string, Histogram>();
  readonly #meterProvider: MeterProvider | undefined;

  constructor(options: TelemetryOptions = {}) {
    this.enabled = options.enabled !== false;
    const tracerProvider = options.tracerProvider as TracerProvider | undefined;
    this.#tracer = (tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
    this.#meterProvider = options.meterProvider as MeterProvider | undefined;
  }

  /**
   * The span of one paid call, continuing the client's trace from `_meta`, or undefined when
   * nothing records it (no SDK registered, or sampled out): then the call runs with no tracing at all.
   */
  startCall(
    name: string,
    attributes: Attributes,
    meta: Record<string, unknown> | undefined,
  ): Span | undefined {
    if (!this.enabled) return undefined;
    const span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, remoteParent(meta));
    if (span.isRecording()) return span;
    span.end();
    return undefined;
  }

  /** Run `fn` as the call of `span` (its steps become child spans), and end the span. */
  async within<T>(span: Span, fn: () => Promise<T>): Promise<T> {
    const ctx = trace.setSpan(context.active(), span);
    try {
      return await this.#calls.run(ctx, () => context.with(ctx, fn));
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  }

  /** A child span of the current call (none outside a call). */
  async step<T>(
    name: string,
    attributes: Attributes,
    fn: (span: Span | undefined) => Promise<T>,
  ): Promise<T> {
    const parent = this.enabled ? this.#calls.getStore() : undefined;
    if (parent === undefined) return fn(undefined);
    const span = this.#tracer.startSpan(name, { attributes }, parent);
    try {
      return await fn(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      throw error;
    } finally {
      span.end();
    }
  }

  /** A child span around synchronous work. */
  stepSync<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => T): T {
    const parent = this.enabled ? this.#calls.getStore() : undefined;
    if (parent === undefined) return fn(undefined);
    const span = this.#tracer.startSpan(name, { attributes }, parent);
    try {
      return fn(span);
    } finally {
      span.end();
    }
  }

  count(name: string, attributes: Attributes = {}, by = 1): void {
    if (!this.enabled) return;
    let counter = this.#counters.get(name);
    if (counter === undefined) {
      counter = this.#meter().createCounter(name);
      this.#counters.set(name, counter);
    }
    counter.add(by, attributes);
  }

  /** Durations in ms. */
  observe(name: string, value: number, attributes: Attributes = {}): void {
    if (!this.enabled) return;
    let histogram = this.#histograms.get(name);
    if (histogram === undefined) {
      histogram = this.#meter().createHistogram(name, { unit: 'ms' });
      this.#histograms.set(name, histogram);
    }
    histogram.record(value, attributes);
  }

  #meter() {
    return (this.#meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  }
}

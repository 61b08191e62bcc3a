import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createTraceState,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableGauge,
  type ObservableResult,
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
const ZEROS = /^0+$/;

/** The client's trace context from a request's `_meta.traceparent` / `tracestate` (W3C Trace Context). */
export function remoteParent(meta: Record<string, unknown> | undefined): Context {
  const header = meta?.['traceparent'];
  if (typeof header !== 'string') return ROOT_CONTEXT;
  const match = TRACEPARENT.exec(header.trim().toLowerCase());
  if (!match) return ROOT_CONTEXT;
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || ZEROS.test(traceId) || ZEROS.test(spanId)) return ROOT_CONTEXT;
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

/** Whether the application registered a context manager (else `context.with` runs `fn` as is). */
const PROBE = ROOT_CONTEXT.setValue(Symbol('payrouter.probe'), true);
const probe = () => context.active() === PROBE;

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'error';
}

/**
 * The span of one paid call and its steps. Child spans take their parent from here, never from
 * an async context: no AsyncLocalStorage (and none of its per-promise hooks) for our spans. When
 * the application registered a context manager, the call and each step are also made active, so
 * spans of other instrumentation (the store's client, a provider's HTTP requests, the tool's own
 * work) nest under them.
 */
export class CallTrace {
  readonly span: Span;
  readonly #tracer: Tracer;
  readonly #context: Context;
  readonly #propagates: boolean;

  constructor(tracer: Tracer, span: Span, parent: Context, propagates: boolean) {
    this.#tracer = tracer;
    this.span = span;
    this.#context = trace.setSpan(parent, span);
    this.#propagates = propagates;
  }

  /** Run the call itself (active where a context manager exists). */
  within<T>(fn: () => Promise<T>): Promise<T> {
    return this.#propagates ? context.with(this.#context, fn) : fn();
  }

  /** A child span around async work; `describe` adds what the result says. */
  async step<T>(
    name: string,
    fn: () => Promise<T>,
    describe?: (span: Span, value: T) => void,
    attributes?: Attributes,
  ): Promise<T> {
    const span = this.#tracer.startSpan(
      name,
      attributes === undefined ? undefined : { attributes },
      this.#context,
    );
    try {
      const value = await (this.#propagates ? context.with(trace.setSpan(this.#context, span), fn) : fn());
      describe?.(span, value);
      return value;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
      throw error;
    } finally {
      span.end();
    }
  }

  /** A child span around synchronous work. */
  stepSync<T>(name: string, fn: () => T, describe?: (span: Span, value: T) => void): T {
    const span = this.#tracer.startSpan(name, undefined, this.#context);
    try {
      const value = fn();
      describe?.(span, value);
      return value;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
      throw error;
    } finally {
      span.end();
    }
  }
}

/**
 * Spans and metrics through @opentelemetry/api only: without an SDK registered by the application
 * (or given as providers) every call is the API's no-op, and a call whose span does not record
 * (no SDK, or sampled out) runs with no tracing work at all. Attributes name the tool, provider,
 * amount, currency and outcome; never arguments or secrets.
 */
export class Telemetry {
  readonly enabled: boolean;
  readonly #tracer: Tracer;
  /** The traced calls in flight, by the call's own per-request object (its `extra`). */
  readonly #calls = new WeakMap<object, CallTrace>();
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
   * The span of one paid call, continuing the client's trace from `_meta`, kept under `key` (the
   * call's per-request object) for its steps; undefined when nothing records it.
   */
  startCall(key: object, tool: string, meta: Record<string, unknown> | undefined): CallTrace | undefined {
    if (!this.enabled) return undefined;
    const parent = meta?.['traceparent'] === undefined ? ROOT_CONTEXT : remoteParent(meta);
    const span = this.#tracer.startSpan(
      'payrouter.paid_call',
      { kind: SpanKind.SERVER, attributes: { 'payrouter.tool': tool } },
      parent,
    );
    if (!span.isRecording()) return undefined;
    const call = new CallTrace(this.#tracer, span, parent, context.with(PROBE, probe));
    this.#calls.set(key, call);
    return call;
  }

  /** The traced call of `key`, if one is recording. */
  callOf(key: object): CallTrace | undefined {
    return this.#calls.get(key);
  }

  /** End the call of `key` (failed when `error` is given): its steps stop finding it. */
  endCall(key: object, ...failure: [error: unknown] | []): void {
    const call = this.#calls.get(key);
    if (call === undefined) return;
    this.#calls.delete(key);
    if (failure.length > 0) {
      const [error] = failure;
      call.span.recordException(error instanceof Error ? error : String(error));
      call.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    call.span.end();
  }

  count(name: string, attributes?: Attributes, by = 1): void {
    if (!this.enabled) return;
    let counter = this.#counters.get(name);
    if (counter === undefined) {
      counter = this.#meter().createCounter(name);
      this.#counters.set(name, counter);
    }
    counter.add(by, attributes);
  }

  /** Durations in ms. */
  observe(name: string, value: number, attributes?: Attributes): void {
    if (!this.enabled) return;
    let histogram = this.#histograms.get(name);
    if (histogram === undefined) {
      histogram = this.#meter().createHistogram(name, { unit: 'ms' });
      this.#histograms.set(name, histogram);
    }
    histogram.record(value, attributes);
  }

  /** An observable gauge read at each collection; returns its unregistration. */
  gauge(name: string, description: string, read: (result: ObservableResult) => void): () => void {
    if (!this.enabled) return () => {};
    const gauge: ObservableGauge = this.#meter().createObservableGauge(name, { description });
    gauge.addCallback(read);
    return () => gauge.removeCallback(read);
  }

  #meter(): Meter {
    return (this.#meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  }
}

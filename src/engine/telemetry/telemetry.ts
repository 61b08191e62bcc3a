import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createNoopMeter,
  createTraceState,
  type Histogram,
  INVALID_SPANID,
  INVALID_TRACEID,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableGauge,
  type ObservableResult,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
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
/** version-traceid-parentid-flags, lower-case hex (W3C Trace Context); tested, not captured. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The client's trace context from a request's `_meta.traceparent` / `tracestate` (W3C Trace Context). */
export function remoteParent(meta: Record<string, unknown> | undefined): Context {
  const raw = meta?.['traceparent'];
  if (typeof raw !== 'string') return ROOT_CONTEXT;
  // The well-formed header is read as sent: no trimmed or lower-cased copy, no capture groups.
  let header = raw;
  if (!TRACEPARENT.test(header)) {
    header = raw.trim().toLowerCase();
    if (!TRACEPARENT.test(header)) return ROOT_CONTEXT;
  }
  const traceId = header.slice(3, 35);
  const spanId = header.slice(36, 52);
  if (header.startsWith('ff') || traceId === INVALID_TRACEID || spanId === INVALID_SPANID)
    return ROOT_CONTEXT;
  const parent: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(header.slice(53), 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  const state = meta?.['tracestate'];
  if (typeof state === 'string' && state.length <= 512) {
    try {
      parent.traceState = createTraceState(state);
    } catch {
      // A malformed tracestate is dropped; the parent stands.
    }
  }
  return trace.setSpanContext(ROOT_CONTEXT, parent);
}

/** Whether the application registered a context manager (else `context.with` runs `fn` as is). */
const PROBE = ROOT_CONTEXT.setValue(Symbol('payrouter.probe'), true);
const probe = () => context.active() === PROBE;

/**
 * The API's no-op instruments: a meter from no SDK hands out these very objects, and an
 * instrument once made is kept for the router's life, so one made as a no-op stays one.
 */
const NOOP_METER = createNoopMeter();
const NOOP_COUNTER = NOOP_METER.createCounter('payrouter.noop');
const NOOP_HISTOGRAM = NOOP_METER.createHistogram('payrouter.noop');

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'error';
}

/** The step that runs the tool: on a call with no step before it, the call's own span is the run's. */
export const RUN_STEP = 'payrouter.run';

/**
 * What a step's span says about its result; `onCall` when the span is the call's own (the run of
 * a call that had no other step), where the step's attributes take the `payrouter.run.` prefix.
 */
export type Describe<T> = (span: Span, value: T, onCall: boolean) => void;

/**
 * The span of one paid call and its steps. Child spans take their parent from here, never from
 * an async context: no AsyncLocalStorage (and none of its per-promise hooks) for our spans. When
 * the application registered a context manager, the call and each step are also made active, so
 * spans of other instrumentation (the store's client, a provider's HTTP requests, the tool's own
 * work) nest under them.
 *
 * A call whose only step is the run (its payment already confirmed, a free call, x402's paid
 * retry) gets no `payrouter.run` child: the call's span carries the run (`payrouter.run.outcome`,
 * `payrouter.run.duration_ms`) and the tool's own spans nest under it. That halves the span work
 * of the most frequent paid call; a call with other steps keeps the run as a child beside them.
 */
export class CallTrace {
  readonly span: Span;
  readonly #tracer: Tracer;
  readonly #parent: Context;
  /** The call's context (its span in the parent's), made when a child or a context manager needs it. */
  #context: Context | undefined;
  readonly #propagates: boolean;
  /** Steps started so far. */
  #steps = 0;

  constructor(tracer: Tracer, span: Span, parent: Context, propagates: boolean) {
    this.#tracer = tracer;
    this.span = span;
    this.#parent = parent;
    this.#propagates = propagates;
  }

  #callContext(): Context {
    this.#context ??= trace.setSpan(this.#parent, this.span);
    return this.#context;
  }

  /** Run the call itself (active where a context manager exists). */
  within<T>(fn: () => Promise<T>): Promise<T> {
    return this.#propagates ? context.with(this.#callContext(), fn) : fn();
  }

  /** A child span around async work (the run, first, on the call's own span); `describe` adds what the result says. */
  step<T>(name: string, fn: () => Promise<T>, describe?: Describe<T>, attributes?: Attributes): Promise<T> {
    if (this.#steps++ === 0 && name === RUN_STEP) return this.#runOnCall(fn, describe);
    return this.#child(name, fn, describe, attributes);
  }

  async #child<T>(
    name: string,
    fn: () => Promise<T>,
    describe: Describe<T> | undefined,
    attributes: Attributes | undefined,
  ): Promise<T> {
    const parent = this.#callContext();
    const span = this.#tracer.startSpan(name, attributes === undefined ? undefined : { attributes }, parent);
    try {
      const value = await (this.#propagates ? context.with(trace.setSpan(parent, span), fn) : fn());
      describe?.(span, value, false);
      return value;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
      throw error;
    } finally {
      span.end();
    }
  }

  /** The run as the call's own span: its outcome and duration become the call's attributes. */
  async #runOnCall<T>(fn: () => Promise<T>, describe: Describe<T> | undefined): Promise<T> {
    const { span } = this;
    const started = performance.now();
    try {
      // The call is already the active context (within), unless something in between changed it.
      const value = await (this.#propagates && context.active() !== this.#callContext()
        ? context.with(this.#callContext(), fn)
        : fn());
      describe?.(span, value, true);
      return value;
    } catch (error) {
      span.setAttribute('payrouter.run.outcome', 'error');
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorName(error) });
      throw error;
    } finally {
      span.setAttribute('payrouter.run.duration_ms', performance.now() - started);
    }
  }

  /** A child span around synchronous work. */
  stepSync<T>(name: string, fn: () => T, describe?: Describe<T>): T {
    this.#steps++;
    const span = this.#tracer.startSpan(name, undefined, this.#callContext());
    try {
      const value = fn();
      describe?.(span, value, false);
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
  /**
   * The traced calls in flight, by the call's own per-request object (its `extra`): one in a slot,
   * any others at the same time in a WeakMap. A server answering one call at a time never touches
   * the map (inside a call, a WeakMap insert costs about a microsecond).
   */
  #slotKey: object | undefined;
  #slotCall: CallTrace | undefined;
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
    if (this.#slotKey === undefined || this.#slotKey === key) {
      this.#slotKey = key;
      this.#slotCall = call;
    } else this.#calls.set(key, call);
    return call;
  }

  /** The traced call of `key`, if one is recording. */
  callOf(key: object): CallTrace | undefined {
    return key === this.#slotKey ? this.#slotCall : this.#calls.get(key);
  }

  /** End `call`, kept under `key` (failed when `error` is given): its steps stop finding it. */
  endCall(key: object, call: CallTrace, ...failure: [error: unknown] | []): void {
    if (key === this.#slotKey) {
      this.#slotKey = undefined;
      this.#slotCall = undefined;
    } else this.#calls.delete(key);
    if (failure.length > 0) {
      const [error] = failure;
      call.span.recordException(error instanceof Error ? error : String(error));
      call.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    call.span.end();
  }

  count(name: string, attributes?: Attributes, by = 1): void {
    if (!this.enabled) return;
    const counter = this.#counter(name);
    if (counter !== NOOP_COUNTER) counter.add(by, attributes);
  }

  /** Durations in ms. */
  observe(name: string, value: number, attributes?: Attributes): void {
    if (!this.enabled) return;
    const histogram = this.#histogram(name);
    if (histogram !== NOOP_HISTOGRAM) histogram.record(value, attributes);
  }

  /**
   * Whether `count(name)` records anything: false with no meter SDK behind the counter, so a
   * caller skips building its attributes. (The counter is made here if it is not yet, as
   * `count` would make it.)
   */
  counts(name: string): boolean {
    return this.enabled && this.#counter(name) !== NOOP_COUNTER;
  }

  /** Whether `observe(name)` records anything (see `counts`). */
  observes(name: string): boolean {
    return this.enabled && this.#histogram(name) !== NOOP_HISTOGRAM;
  }

  #counter(name: string): Counter {
    let counter = this.#counters.get(name);
    if (counter === undefined) {
      counter = this.#meter().createCounter(name);
      this.#counters.set(name, counter);
    }
    return counter;
  }

  #histogram(name: string): Histogram {
    let histogram = this.#histograms.get(name);
    if (histogram === undefined) {
      histogram = this.#meter().createHistogram(name, { unit: 'ms' });
      this.#histograms.set(name, histogram);
    }
    return histogram;
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

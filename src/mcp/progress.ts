import type { ToolExtra } from './subject.js';

/** A call without a progress token reports nothing: one function for all of them. */
const noProgress = (_message: string): void => {};

/**
 * Progress notifications for a call, sent only when the client asked for them (gave a token).
 * Failures to send are ignored: progress is a courtesy, never a reason to fail a paid call.
 */
export function progressReporter(extra: ToolExtra): (message: string) => void {
  const token = extra._meta?.progressToken;
  if (token === undefined) return noProgress;
  let progress = 0;
  return (message: string) => {
    progress += 1;
    extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress, message },
      })
      .catch(() => {});
  };
}

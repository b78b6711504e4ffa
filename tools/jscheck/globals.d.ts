// What the browser modules under web/ add to, or read from, the global scope.
interface Window {
  /** The console's state for tests and diagnostics (web/console/console.js). */
  liveConsole: unknown;
  /** Safari before 14.1 names AudioContext this way. */
  webkitAudioContext?: typeof AudioContext;
}

// Hosted pay and return pages and provider webhook endpoints, served by `router.httpHandler()`.
export { createHttpHandler, type HttpHandler } from './http-handler.js';

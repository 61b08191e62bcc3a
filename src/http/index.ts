// Hosted pay and return pages and provider webhook endpoints, served by `router.httpHandler()`.
export { createHttpHandler, type HttpHandler, type HttpHandlerParts } from './http-handler.js';

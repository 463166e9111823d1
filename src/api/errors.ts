// One error shape for the REST API: the real HTTP status and a JSON body (spec §9.4).
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(status: number, message: string): { error: string; code: number } {
  return { error: message, code: status };
}

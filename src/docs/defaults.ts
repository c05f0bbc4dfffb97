/** Document defaults, apart from the code that uses them so the CLI can show them without loading it. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const DEFAULT_PUT_WORKERS = 4;
export const DEFAULT_GET_WORKERS = 4;

export * from './close-codes';
export * from './error-codes';
export * from './messages';

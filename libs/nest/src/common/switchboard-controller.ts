import { applyDecorators, UseFilters, UsePipes, ValidationPipe } from '@nestjs/common';
import { HttpExceptionFilter } from './http-exception.filter';

/**
 * What every Switchboard controller carries itself, so that a host application installs nothing
 * by hand and its own routes keep their own settings: the error filter (`Retry-After`,
 * `WWW-Authenticate`, `503` for an unreachable store) and the validation of bodies (unknown
 * properties refused).
 */
export function SwitchboardController(): ClassDecorator {
  return applyDecorators(
    UseFilters(HttpExceptionFilter),
    UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true })),
  );
}

import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { AppConfig } from '../config/app-config';
import { storeProvider } from '../redis/redis.module';
import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { DevTokenService } from './dev-token.service';
import { SessionGuard } from './session.guard';
import { AnonymousIdentities } from './anonymous-identities';
import { CookieSessions } from './cookie-sessions';
import { MemoryRevocationStore } from './memory-revocation.store';
import { RedisRevocationStore } from './redis-revocation.store';
import { RevocationStore } from './revocation-store.interface';
import { Revocations } from './revocations.service';
import { jwtModuleOptions, TokenVerifier } from './token-verifier.service';

@Module({
  imports: [JwtModule.registerAsync({ inject: [AppConfig], useFactory: jwtModuleOptions })],
  controllers: [AuthController],
  providers: [
    TokenVerifier,
    Revocations,
    AuthService,
    DevTokenService,
    SessionGuard,
    AnonymousIdentities,
    CookieSessions,
    storeProvider<RevocationStore>(
      RevocationStore,
      () => new MemoryRevocationStore(),
      (redis) => new RedisRevocationStore(redis),
    ),
  ],
  exports: [AuthService, SessionGuard, AnonymousIdentities, CookieSessions],
})
export class AuthModule {}
